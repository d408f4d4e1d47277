"""`ctilink nkey`: a NATS user key pair, for infra/nats/accounts.conf and `--nkey`.

The seed (the secret) goes to a file only its owner may read; the public key
(what the server's configuration names) is printed. No password is ever written
into a configuration file, and a missing key makes nats-server refuse to start.
"""

from __future__ import annotations

import argparse
import os
import sys

import nkeys

from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.errors import UserError


def cmd_nkey(service: object, args: argparse.Namespace) -> int:
    """Write a new user seed to the file given; print its public key."""
    pair = nkeys.from_seed(nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER))
    try:
        fd = os.open(args.seed_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise UserError(f"{args.seed_file}: exists already; a seed is never overwritten") from None
    with os.fdopen(fd, "wb") as out:
        out.write(pair.seed + b"\n")
    sys.stdout.write(pair.public_key.decode() + "\n")
    return 0


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("nkey")
    p.add_argument("seed_file", metavar="SEED_FILE", help="where to write the seed (mode 0600)")
    p.set_defaults(run=cmd_nkey, uses_store=False)
