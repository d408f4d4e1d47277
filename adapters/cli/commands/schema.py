"""`ctilink schema`: the JSON Schema of the messages ctilink takes and sends, from the wire types.

Generated at run time from the msgspec Structs that decode and encode them
(adapters/nats/schema.py), so it cannot drift from what the service does;
docs/schema.md says how to use it and what no schema can state.
"""

from __future__ import annotations

import argparse
import sys

from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.nats.schema import PARTS, rendered


def cmd_schema(service: object, args: argparse.Namespace) -> int:
    """Print one schema document as JSON (the store is not read)."""
    sys.stdout.buffer.write(rendered(args.what))
    return 0


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("schema")
    p.add_argument(
        "what",
        nargs="?",
        default="all",
        metavar="WHAT",
        help=f"all (default), {', '.join(PARTS)}, or a message's name, e.g. Status",
    )
    p.set_defaults(run=cmd_schema, uses_store=False)
