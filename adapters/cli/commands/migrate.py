"""`ctilink migrate`: make the store's tables, or bring them to this version, as their owner."""

from __future__ import annotations

import argparse
from typing import Any

from ctilink.adapters.cli.output import emit_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.cli.render import pairs
from ctilink.adapters.store.persistence.schema import SCHEMA_VERSION, Migrated, version_of
from ctilink.adapters.store.selection import open_service, redact, resolve, tables_of


def cmd_migrate(service: object, args: argparse.Namespace) -> int:
    """Create or upgrade every table; say what was there before and what was made."""
    location = resolve(args.store)
    before, version = tables_of(location)
    opened = open_service(location)  # makes whatever is missing, and marks the version
    try:
        recorder: Any = opened.recorder
        after = version_of(recorder)
    finally:
        opened.close()
    now, _ = tables_of(location)
    done = Migrated(redact(location), version, after, sorted(now - before))
    if args.json:
        emit_json(done)
        return 0
    print(
        pairs(
            [
                ("store", done.store),
                ("schema", f"{done.before} -> {done.after} (this ctilink: {SCHEMA_VERSION})"),
                ("tables made", ", ".join(done.created) or "none"),
            ]
        )
    )
    return 0


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser("migrate", parents=parents.both)
    p.set_defaults(run=cmd_migrate, uses_store=False)
