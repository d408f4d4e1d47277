"""The `ctilink` command line: finds the commands in ctilink.adapters.cli.commands and runs one."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sqlite3
import sys
from collections.abc import Sequence

from eventsourcing.persistence import PersistenceError

from ctilink.adapters.cli import commands
from ctilink.adapters.cli.commands.history import HistoryError
from ctilink.adapters.ingest.parallel import WorkerFailed
from ctilink.adapters.nats.remote import RemoteError
from ctilink.adapters.nats.streams import SettingError
from ctilink.adapters.store.selection import StoreError, open_service
from ctilink.domain.errors import PositionOutOfRange, UnknownNetwork


def parser() -> argparse.ArgumentParser:
    """The argument parser: one sub-command per verb, from every command module."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", help="SQLite file (default: $CTILINK_STORE or ./ctilink.db)")
    common.add_argument("--json", action="store_true", help="exact, stable JSON output")
    top = argparse.ArgumentParser(
        prog="ctilink", description="Event-sourced CTI link state for one-X Portal networks."
    )
    verbs = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
        importlib.import_module(f"{commands.__name__}.{module}").register(verbs, common)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors are one line on stderr, never a traceback."""
    args = parser().parse_args(argv)
    try:
        if getattr(args, "nats", None) and getattr(args, "asks_service", False):
            return args.run(None, args)  # a query answered by a running service
        service = open_service(args.store, create=getattr(args, "creates_store", False))
        try:
            return args.run(service, args)
        finally:
            service.close()
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (
        UnknownNetwork,
        PositionOutOfRange,
        StoreError,
        WorkerFailed,
        RemoteError,
        HistoryError,
        SettingError,
        OSError,
    ) as error:
        print(f"ctilink: {error}", file=sys.stderr)
        return 2
    except (sqlite3.Error, PersistenceError) as error:
        # The store failed mid-command (disk full, locked too long): what was
        # reported before this line is durable; nothing after it was applied.
        print(f"ctilink: store error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("ctilink: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
