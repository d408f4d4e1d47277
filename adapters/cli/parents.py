"""The options several commands share, as argparse parents: each command takes only those
that mean something to it (`--json` where it prints results, `--store` where it opens one)."""

from __future__ import annotations

import argparse

from ctilink.adapters.ops.logs import LEVELS


class Parents:
    """`--store` and `--json`, each a parent parser a command may take."""

    def __init__(self, store: argparse.ArgumentParser, as_json: argparse.ArgumentParser) -> None:
        self.store = store
        self.json = as_json

    @property
    def both(self) -> list[argparse.ArgumentParser]:
        """Both: for a command that reads a store and prints what it found."""
        return [self.store, self.json]


def parents(parser_class: type[argparse.ArgumentParser]) -> Parents:
    """The shared options, as parsers of the CLI's own class (one-line usage errors)."""
    store = parser_class(add_help=False)
    store.add_argument(
        "--store", help="SQLite file or postgresql:// URL (default: $CTILINK_STORE or ./ctilink.db)"
    )
    as_json = parser_class(add_help=False)
    as_json.add_argument("--json", action="store_true", help="exact, stable JSON output")
    return Parents(store, as_json)


def add_log_level(parser: argparse.ArgumentParser) -> None:
    """--log-level, for the commands that run as services (serve, publish, web)."""
    parser.add_argument(
        "--log-level",
        choices=LEVELS,
        default="info",
        help="leave out log lines below this level (default: info)",
    )
