"""The `ctilink` command line: parse, open what the command needs, run it, errors in one line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ctilink.adapters.cli.parents import parents
from ctilink.adapters.errors import UserError
from ctilink.adapters.ops.logs import fatal
from ctilink.domain.errors import DamagedLog, PositionOutOfRange, UnknownNetwork

# Every command, the module that implements it (adapters/cli/commands/), and its
# one-line help. Only the module of the command being run is imported, so that
# `status` does not load NATS and `--help` loads nothing.
COMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("ingest", "apply a JSON Lines file of events"),
    "status": ("status", "mode, providers, component status"),
    "directory": ("status", "system and personal directories"),
    "log": ("log", "the network's events: a range, some types, or following new ones"),
    "networks": ("log", "every network"),
    "rejections": (
        "rejections",
        "rejected events (filtered by network, code, time): why, and what was sent",
    ),
    "replay": ("history", "what each log position changed in the status"),
    "audit": ("history", "settings, restarts, providers and topology changes"),
    "diff": ("history", "status differences between positions"),
    "preview": (
        "preview",
        "what one event would change, at once and after a restart; commits nothing",
    ),
    "verify": ("integrity", "recompute the hash chains; exit 1 when any differs; a summary line"),
    "head": ("integrity", "the network's last position and its chain hash"),
    "reindex": ("integrity", "build the id, time and network indexes again from the log"),
    "migrate": ("migrate", "make the store's tables or bring them to this version, as their owner"),
    "export": ("export", "the log as JSON Lines that `ingest` reads back"),
    "diagram": ("diagram", "the mode state machine as Mermaid, from the domain's table"),
    "schema": ("schema", "the JSON Schema of every message ctilink takes and sends"),
    "nkey": ("nkey", "a new NATS user key pair: the seed to a file, the public key printed"),
    "streams": ("streams", "the JetStream streams' limits and contents; change CTILINK_OUT's"),
    "out": ("out", "CTILINK_OUT from any sequence, and followed, as a reader may read it"),
    "serve": ("serve", "consume ctilink.in.*, publish CTILINK_OUT, answer ctilink.api.*"),
    "publish": ("serve", "publish the store's log to CTILINK_OUT (serve runs this itself)"),
    "web": ("web", "the console: every network, its status now or then, its log, in a browser"),
}


class Parser(argparse.ArgumentParser):
    """argparse, with a usage error told in one line like every other error."""

    def error(self, message: str) -> NoReturn:
        """One line on stderr, exit 2."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """The argument parser; the command named in `argv` gets its full set of options."""
    top = Parser(
        prog="ctilink", description="Event-sourced CTI link state for one-X Portal networks."
    )
    top.add_argument("--version", action=Version, help="print ctilink's version and exit")
    verbs = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    module = COMMANDS[chosen][0] if chosen else None
    for name, (home, what) in COMMANDS.items():
        if home == module:
            continue  # registered in full below
        verbs.add_parser(name, help=what)
    if module is not None:
        commands = importlib.import_module(f"ctilink.adapters.cli.commands.{module}")
        commands.register(verbs, parents(Parser))
    for name, subparser in verbs.choices.items():
        subparser.description = COMMANDS[name][1]
    return top


class Version(argparse.Action):
    """`--version`: `ctilink X.Y.Z` from the installed package's metadata, exit 0."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        """Print the version; read only when asked (the metadata costs start-up time)."""
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("ctilink")
        except PackageNotFoundError:  # run from a checkout that was never installed
            number = "(not installed)"
        sys.stdout.write(f"ctilink {number}\n")
        parser.exit(0)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; errors are one line on stderr, never a traceback."""
    argv = sys.argv[1:] if argv is None else list(argv)
    for number, argument in enumerate(argv, 1):
        if not is_utf8(argument):  # the OS passes any bytes; names and paths here are text
            print(f"ctilink: argument {number} is not UTF-8: {argument!a}", file=sys.stderr)
            return 2
    args = parser(argv).parse_args(argv)
    try:
        return run(args)
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours. Point stdout at
        # /dev/null so the interpreter's final flush does not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as error:  # a file named on the command line: missing, a directory…
        where = f"{error.filename}: " if error.filename else ""
        fatal(f"{where}{error.strerror or error}")
        return 2
    except (UnknownNetwork, PositionOutOfRange, DamagedLog, UserError) as error:
        fatal(str(error))
        return 2
    except KeyboardInterrupt:
        fatal("interrupted")
        return 130
    except Exception as error:
        # The last resort: a bug, or a store damaged in a way not foreseen. Still
        # one line, saying where to look; the traceback when asked for.
        if os.environ.get("CTILINK_DEBUG"):
            raise
        fatal(
            f"unexpected {type(error).__name__}: {first_line(error)} "
            "(a damaged store? `ctilink verify` checks it; CTILINK_DEBUG=1 shows where)"
        )
        return UNEXPECTED


UNEXPECTED = 70  # EX_SOFTWARE


def is_utf8(text: str) -> bool:
    """Whether an argument came as UTF-8 (undecodable bytes arrive as lone surrogates)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def first_line(error: BaseException) -> str:
    """The first line of an error's message, printable."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    return ascii(line)[1:-1] if not is_utf8(line) else line


def run(args: argparse.Namespace) -> int:
    """Open the store the command needs (none for a question to a running service) and run it."""
    import sqlite3

    from eventsourcing.persistence import PersistenceError  # the store's errors

    from ctilink.adapters import bootstrap

    try:
        if not getattr(args, "uses_store", True):
            return args.run(None, args)
        if getattr(args, "nats", None) and getattr(args, "asks_service", False):
            return args.run(None, args)  # a query answered by a running service
        store, create = args.store, getattr(args, "creates_store", False)
        if getattr(args, "dry_run", False):  # decides against the store, writes nothing
            store, create = bootstrap.store_to_preview(store), False
        # `reindex` builds the indexes itself: not once on opening, and again.
        service = bootstrap.service(
            store,
            create=create,
            index=args.command != "reindex",
            existing=getattr(args, "needs_log", False),
        )
        try:
            return args.run(service, args)
        finally:
            service.close()
    except (PersistenceError, sqlite3.Error) as error:
        # The store failed mid-command (disk full, locked too long): what was
        # reported before this line is durable; nothing after it was applied.
        raise StoreFailed(f"store error: {first_line(error)}") from None


class StoreFailed(UserError):
    """The store failed while the command ran."""


if __name__ == "__main__":
    sys.exit(main())
