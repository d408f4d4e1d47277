"""`ctilink ingest --dry-run`: what a file would change, committing nothing.

The whole file is decided in one `NetworkService.preview` (the same checks, the
same order as ingest, on in-memory copies of the networks), so it is held in
memory; `--jobs` does not apply. Each network's status before (`state_at`, none
when it is not installed yet) is compared with its status after
(projections/changes.py).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from typing import Any, BinaryIO

import msgspec

from ctilink.adapters.cli.output import encode_json
from ctilink.adapters.cli.render import pairs, safe_lines, table
from ctilink.adapters.ingest import lines as ingesting
from ctilink.domain.application import NetworkService
from ctilink.domain.decoding import Invalid, named
from ctilink.domain.errors import UnknownNetwork
from ctilink.domain.state import NetworkState
from ctilink.projections.changes import NO_CHANGES, Changes, ProviderChanges, RowChange, compare
from ctilink.projections.status import status


class NetworkPreview(msgspec.Struct, frozen=True):
    """`ingest --dry-run --json`: one network named in the file, and what would change.

    `from`/`to`: its position now and after the file (null: not installed).
    `mode`, `providers`, `components`: as projections.changes.Changes. `lines`:
    the reports of the lines naming this network, as `ingest --json` would print them.
    """

    network: str | None  # None gathers the lines that name no network at all
    from_: int | None = msgspec.field(name="from")
    to: int | None
    mode: dict[str, tuple[Any, Any]]
    providers: ProviderChanges
    components: list[RowChange]
    lines: list[ingesting.LineReport]

    @property
    def changes(self) -> Changes:
        """The status changes alone."""
        return Changes(self.mode, self.providers, self.components)


def _named_network(item: Any, raw: bytes | None) -> str | None:
    """The network a line names: from the event, or from the raw JSON when it is invalid."""
    if not isinstance(item, Invalid):
        return item.network
    return named(raw, "network")


def preview(service: NetworkService, stream: BinaryIO) -> list[NetworkPreview]:
    """Decide every line against the store without committing; one entry per network named."""
    parsed = []
    for line in ingesting.read_lines(stream):
        item = ingesting.parse(line)
        parsed.append((line.number, item, _named_network(item, line.raw)))
    messages = [item for _, item, _ in parsed if not isinstance(item, Invalid)]
    outcomes, after = service.preview(messages)
    decided = iter(outcomes)
    lines: dict[str | None, list[ingesting.LineReport]] = {}
    for number, item, network in parsed:
        if isinstance(item, Invalid):
            report = ingesting.LineReport(
                number, item.id, "rejected", None, "invalid", item.message
            )
        else:
            o = next(decided)
            report = ingesting.LineReport(number, item.id, o.outcome, o.position, o.code, o.message)
        lines.setdefault(network, []).append(report)
    return [
        _network(service, name, after.get(name) if name is not None else None, reports)
        for name, reports in sorted(lines.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    ]


def _network(
    service: NetworkService,
    name: str | None,
    after: tuple[NetworkState, int] | None,
    reports: list[ingesting.LineReport],
) -> NetworkPreview:
    """One network's entry: its status now against its status after the file."""
    before = None
    if name is not None:
        try:
            before = service.state_at(name)
        except UnknownNetwork:
            before = None
    start = None if before is None else before[1]
    if after is None:
        changes, end = NO_CHANGES, start
    else:
        old = None if before is None else status(*before)
        changes, end = compare(old, status(*after)), after[1]
    return NetworkPreview(
        name, start, end, changes.mode, changes.providers, changes.components, reports
    )


# --- the command ----------------------------------------------------------------------


def cmd_dry_run(service: NetworkService, args: argparse.Namespace) -> int:
    """Print what ingesting the file would change; exit 1 when any line would be rejected."""
    stream = sys.stdin.buffer if args.file == "-" else open(args.file, "rb")  # noqa: SIM115
    with stream:
        networks = preview(service, stream)
    reports = sorted((r for n in networks for r in n.lines), key=lambda r: r.line)
    if args.json:
        out = sys.stdout.buffer
        for network in networks:
            out.write(encode_json(network) + b"\n")
    else:
        print(safe_lines(render(networks, reports)))
    return 1 if any(r.outcome == "rejected" for r in reports) else 0


def render(networks: list[NetworkPreview], reports: list[ingesting.LineReport]) -> str:
    """The text report: counts, each network's changes, the rejected lines."""
    counts = Counter(r.outcome for r in reports)
    parts = [
        "dry run: nothing was committed",
        pairs(
            [(k, counts[k]) for k in ("accepted", "duplicate", "rejected")]
            + [("lines", len(reports))]
        ),
    ]
    parts += [_render_network(n) for n in networks if n.network is not None]
    rejected = [r for r in reports if r.outcome == "rejected"]
    if rejected:
        parts.append(
            table(
                ("line", "id", "code", "reason"),
                [(r.line, r.id, r.code, r.message) for r in rejected],
            )
        )
    return "\n\n".join(parts)


def _position(position: int | None) -> str:
    return "not installed" if position is None else f"position {position}"


def _render_network(network: NetworkPreview) -> str:
    """One network's block of the text report."""
    if network.from_ == network.to:
        return f"{network.network}: {_position(network.from_)}, unchanged"
    lines = [f"{network.network}: {_position(network.from_)} -> {_position(network.to)}"]
    changes = network.changes
    if changes.empty:
        lines.append("  status unchanged")
    if changes.mode:
        described = ", ".join(
            f"{key} {_moved(old, new) if network.from_ is not None else _value(new)}"
            for key, (old, new) in changes.mode.items()
        )
        lines.append(f"  mode: {described}")
    for sign, listed in (("+", changes.providers.added), ("-", changes.providers.removed)):
        lines += [f"  provider {sign} {p.kind} {p.target} ({p.origin})" for p in listed]
    if changes.components:
        rows = [
            (
                c.system,
                c.component,
                _cell(c, "state"),
                _cell(c, "via"),
            )
            for c in changes.components
        ]
        rendered = table(("system", "component", "state", "via"), rows)
        lines += ["  components:"] + ["    " + row for row in rendered.splitlines()]
    return "\n".join(lines)


def _value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def _moved(old: Any, new: Any) -> str:
    """`old -> new`, or the value alone when it did not change."""
    return _value(new) if old == new else f"{_value(old)} -> {_value(new)}"


def _cell(change: RowChange, field: str) -> str:
    """One field of a changed row: the new value for a new row, else `old -> new`."""
    if change.before is None:
        return _value(getattr(change.after, field))
    old = getattr(change.before, field)
    if change.after is None:
        return f"{_value(old)} -> (removed)"
    return _moved(old, getattr(change.after, field))
