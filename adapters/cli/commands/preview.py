"""`ctilink preview NETWORK EVENT_JSON [--then-restart]`: one event decided on a copy.

Before an irreversible step (Convert to Central CTI Link, M4) or one that only
takes effect at the next portal restart (a setting, M5): the event is decided by
the same rules as `ingest`, on an in-memory copy of the network, and nothing is
committed (the store is opened read-only). It prints what would change at once
and, with `--then-restart`, after a portal restart that follows it.
"""

from __future__ import annotations

import argparse

import msgspec

from ctilink.adapters.cli.commands.history import change_lines
from ctilink.adapters.cli.output import emit_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.cli.render import safe
from ctilink.adapters.errors import UserError
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.decoding import Invalid, decode
from ctilink.projections.preview import Effect, Preview, preview_id, previewed

_untyped = msgspec.json.Decoder()


class BadEvent(UserError):
    """EVENT_JSON cannot be decided: it is no event, or names another network."""


def completed(network: str, raw: bytes) -> bytes:
    """The event with `network` and `id` filled in when it leaves them out (the rest as sent)."""
    try:
        given = _untyped.decode(raw)
    except Exception:  # whatever the bytes: decoding says why, below
        return raw
    if not isinstance(given, dict):
        return raw
    if "network" in given and given["network"] != network:
        raise BadEvent(f"EVENT_JSON names network {given['network']!r}, not NETWORK {network!r}")
    extra: dict[str, str] = {}
    if "network" not in given:
        extra["network"] = network
    if "id" not in given:
        extra["id"] = preview_id(network.encode() + b"\0" + raw)
    if not extra:
        return raw
    # Spliced in after the opening brace, so that what was sent is decided as it is
    # (a repeated key, say, is still refused).
    head = msgspec.json.encode(extra)[:-1]
    return head + (b"," if given else b"") + raw.strip()[1:]


def event_of(network: str, text: str) -> m.Message:
    """The event to preview (BadEvent: the reason, naming the field)."""
    if not m.is_name(network):
        raise BadEvent(f"NETWORK: {network!r} is not a network name ([A-Za-z0-9_-], 1-64)")
    found = decode(completed(network, text.encode("utf-8", "surrogatepass")))
    if isinstance(found, Invalid):
        raise BadEvent(f"EVENT_JSON: {found.message}")
    return found


def cmd_preview(service: NetworkService, args: argparse.Namespace) -> int:
    """Decide the event on a copy; exit 1 when the rules would reject it."""
    event = event_of(args.network, args.event)
    made = previewed(service, event, restart=args.then_restart)
    if args.json:
        emit_json(made)
    else:
        print("\n".join(safe(line) for line in render(made, args.then_restart)))
    return 1 if made.outcome == "rejected" else 0


def render(made: Preview, then_restart: bool) -> list[str]:
    """The text report: the outcome, then what would change at once and after a restart."""
    where = "not installed" if made.position is None else f"at position {made.position}"
    lines = [
        f"preview of {m.type_of(made.event)} on {made.network} ({where}): nothing was committed"
    ]
    if made.outcome == "rejected":
        return [*lines, f"rejected: {made.code}: {made.message}"]
    if made.at_once is None:
        return [*lines, f"{made.outcome}: nothing would change"]
    lines.append(f"accepted: it would be position {made.at_once.position}")
    lines += _effect("at once", made.at_once)
    if made.after_restart is not None:
        lines += _effect("after the next portal restart", made.after_restart)
    elif not then_restart and made.at_once.mode.get("restart_pending", (None, False))[1]:
        lines.append("(a restart is now pending: --then-restart shows what it would change)")
    return lines


def _effect(when: str, effect: Effect) -> list[str]:
    """One block: when, at which position, and each change (or none)."""
    changes = change_lines(effect.mode, effect.providers, effect.components)
    return [
        f"{when}, position {effect.position} (compared with now):",
        *(f"  {line}" for line in changes or ["no change in the status"]),
    ]


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the command to the parser."""
    p = verbs.add_parser(
        "preview",
        parents=parents.both,
        epilog="Exit status: 0 when the event would be accepted (or is a duplicate), 1 when "
        "the rules would reject it, 2 when EVENT_JSON is no valid event.",
    )
    p.add_argument("network", metavar="NETWORK")
    p.add_argument(
        "event",
        metavar="EVENT_JSON",
        help='the event as JSON, e.g. \'{"type": "converted_to_central"}\'; "network" may be '
        'left out (NETWORK is used) and so may "id" (one is made up from the event)',
    )
    p.add_argument(
        "--then-restart",
        action="store_true",
        help="also show what a portal restart right after it would change (settings take "
        "effect only then, M5)",
    )
    # Decided against the store as it is, opened read-only: a store that does not
    # exist is decided against as a new, empty one (as `ingest --dry-run`).
    p.set_defaults(run=cmd_preview, dry_run=True)
