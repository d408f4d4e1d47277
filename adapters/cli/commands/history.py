"""`ctilink replay`, `audit` and `diff`: a network's history, and the `--at-time` lookup."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ctilink.adapters.cli.as_of import rfc3339
from ctilink.adapters.cli.output import emit_json, encode_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.cli.render import print_table, safe, safe_lines
from ctilink.adapters.progress import Progress
from ctilink.adapters.store.queries.log_reader import logged_messages
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import PositionOutOfRange
from ctilink.projections.changes import (
    AUDITED,
    AuditEntry,
    ModeChanges,
    ProviderChanges,
    RowChange,
    audit,
    diff,
    replay,
)
from ctilink.projections.log import entry, fields
from ctilink.projections.status import ComponentRow, status

# --- rendering changes ----------------------------------------------------------

ARROW = "→"


def describe_row(row: ComponentRow | None) -> str:
    """A component row's state and via, in a few words."""
    if row is None:
        return "absent"
    return f"{row.state} via {row.via}" if row.via is not None else f"{row.state}, no via"


def change_lines(
    mode: ModeChanges, provider_set: ProviderChanges, components: list[RowChange]
) -> list[str]:
    """One line per changed mode key, provider and component row."""
    lines = []
    for key, (old, new) in mode.items():
        old_text = "-" if old is None else _word(old)
        lines.append(f"mode {key}: {old_text} {ARROW} {_word(new)}")
    lines += [f"provider added: {p.kind} {p.target} ({p.origin})" for p in provider_set.added]
    lines += [f"provider removed: {p.kind} {p.target} ({p.origin})" for p in provider_set.removed]
    lines += [
        f"component {c.system} {c.component}: "
        f"{describe_row(c.before)} {ARROW} {describe_row(c.after)}"
        for c in components
    ]
    return lines


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# --- progress -----------------------------------------------------------------

# --- replay -----------------------------------------------------------------------


def cmd_replay(service: NetworkService, args: argparse.Namespace) -> int:
    """Fold the log position by position and print what each one changed."""
    head = service.head(args.network)
    upto = head if args.to is None else args.to
    if not 1 <= upto <= head:
        raise PositionOutOfRange(args.network, upto, head)
    log = logged_messages(service, args.network, upto)
    progress = Progress.maybe("replay", upto)
    out = sys.stdout.buffer
    width = len(str(upto))
    try:
        for step in replay(log):
            if args.json:
                out.write(encode_json(step) + b"\n")
            else:
                lines = change_lines(step.mode, step.providers, step.components)
                header = f"{step.position:>{width}} {step.type}"
                text = "\n".join([header] + [f"{'':>{width}}   {line}" for line in lines])
                shown = safe_lines(text) if lines else f"{header} (no change)"
                out.write(shown.encode() + b"\n")
            if progress is not None:
                progress.update(step.position)
    finally:
        if progress is not None:
            progress.close()
    return 0


# --- audit --------------------------------------------------------------------------


def cmd_audit(service: NetworkService, args: argparse.Namespace) -> int:
    """Settings, conversions, restarts, provider records and topology, with the modes."""
    service.head(args.network)  # unknown network -> exit 2
    entries = (entry(event) for event in service.log(args.network))
    found = audit(entries, since=args.since, types=args.type)
    if args.json:
        for item in found:
            emit_json(item)
        return 0
    headers = ("position", "at", "actor", "type", "fields", "configured", "effective")
    print_table(headers, (_audit_row(item) for item in found))
    return 0


def _audit_row(item: AuditEntry) -> tuple[Any, ...]:
    """One audited position in the text table."""
    detail = " ".join(f"{k}={encode_json(v).decode()}" for k, v in fields(item.event).items())
    return (
        item.position,
        item.at.isoformat(timespec="seconds"),
        item.actor,
        item.type,
        detail,
        _before_after(item.configured),
        _before_after(item.effective),
    )


def _before_after(pair: tuple[str | None, str]) -> str:
    """`old → new` when the mode moved, else the one mode."""
    old, new = pair
    return new if old in (None, new) else f"{old} {ARROW} {new}"


# --- diff -----------------------------------------------------------------------------


def cmd_diff(service: NetworkService, args: argparse.Namespace) -> int:
    """What differs in the status document between two positions."""
    before = status(*service.state_at(args.network, args.a))
    after = status(*service.state_at(args.network, args.b))
    found = diff(before, after)
    if args.json:
        emit_json(found)
        return 0
    print(f"{found.network}: position {found.from_} {ARROW} {found.to}")
    lines = change_lines(found.mode, found.providers, found.components)
    print("\n".join(f"  {safe(line)}" for line in lines) if lines else "  no differences")
    return 0


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the commands to the parser."""
    p = verbs.add_parser("replay", parents=parents.both)
    p.add_argument("network")
    p.add_argument("--to", type=int, metavar="POSITION", help="stop after this position")
    p.set_defaults(run=cmd_replay)

    p = verbs.add_parser("audit", parents=parents.both)
    p.add_argument("network")
    p.add_argument(
        "--since", type=rfc3339, metavar="RFC3339", help="only events recorded at or after this"
    )
    p.add_argument(
        "--type",
        action="append",
        choices=AUDITED,
        metavar="TYPE",
        help=f"only this event type; repeat for more (any of: {', '.join(AUDITED)})",
    )
    p.set_defaults(run=cmd_audit)

    p = verbs.add_parser("diff", parents=parents.both)
    p.add_argument("network")
    p.add_argument("a", type=int, metavar="A", help="from this position")
    p.add_argument("b", type=int, metavar="B", help="to this position")
    p.set_defaults(run=cmd_diff)
