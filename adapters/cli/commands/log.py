"""`ctilink log` and `ctilink networks`: the logs and what they hold."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any, cast

from ctilink.adapters.cli.argtypes import position_or_time, positive
from ctilink.adapters.cli.as_of import first_of_range, last_of_range
from ctilink.adapters.cli.connection import add_connection_arguments, nats_options
from ctilink.adapters.cli.output import emit_json_array, encode_json
from ctilink.adapters.cli.parents import Parents
from ctilink.adapters.cli.render import TABLE_PAGE, GrowingTable, print_table
from ctilink.adapters.errors import UserError
from ctilink.adapters.nats.wire import NetworksQuery, NetworkSummary
from ctilink.adapters.store.queries.listing import each_line
from ctilink.adapters.store.selection import MEMORY, is_postgres, opens_immutable, resolve
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import DamagedLog
from ctilink.domain.messages import EVENT_TYPES, is_name
from ctilink.domain.mode import Mode
from ctilink.projections.log import LogEntry, entry, fields

if TYPE_CHECKING:
    from ctilink.adapters.cli.follow import Stop


FOLLOW_EVERY = 0.25  # seconds between looks for new positions (`--follow`)
LOG_HEADERS = ("position", "at", "actor", "type", "id", "fields")


def cmd_log(service: NetworkService, args: argparse.Namespace) -> int:
    """Print the network's log (a range of it, some types), one position per line; with
    --follow, go on printing positions as they are committed until SIGINT or SIGTERM."""
    if args.follow and args.until is not None:
        raise UserError("log: --follow goes on past every position: leave out --until")
    service.head(args.network)  # unknown network -> exit 2
    low = first_of_range(service, args.network, args.since)
    high = last_of_range(service, args.network, args.until)
    wanted = frozenset(args.type or ())
    if not args.follow:
        show(entries(service, args.network, low, high, wanted, args.limit), args.json)
        return 0
    from ctilink.adapters.cli.follow import until_signalled  # only --follow sets handlers

    location = resolve(args.store)
    if not is_postgres(location) and location != MEMORY and opens_immutable(location):
        print(
            "ctilink: log --follow: this user cannot write beside the store (its -shm file), "
            "so no later commit will be seen",
            file=sys.stderr,
        )
    with until_signalled() as stop:
        found = entries(service, args.network, low, None, wanted, args.limit, stop)
        show(found, args.json)
    return 0


def entries(
    service: NetworkService,
    network: str,
    low: int,
    high: int | None,
    wanted: frozenset[str],
    limit: int | None,
    stop: Stop | None = None,
) -> Iterator[LogEntry | None]:
    """The log entries of positions low..high of the types wanted (all when none), at most
    `limit`; with `stop`, new positions as they come, None each time the log is caught up."""
    after, left = low - 1, limit
    if high is not None and high < low:
        return  # an empty range (a time before every event, say): nothing to read
    while True:
        for event in service.log(network, upto=high, after=after):
            after = event.originator_version
            item = entry(event)
            if wanted and item.type not in wanted:
                continue
            yield item
            if left is not None:
                left -= 1
                if left == 0:
                    return
        if stop is None:
            return
        yield None
        if stop.wait(FOLLOW_EVERY):
            return


def show(found: Iterable[LogEntry | None], as_json: bool) -> None:
    """Write entries as JSON lines or table rows; each None (caught up) flushes them out."""
    if as_json:
        out = sys.stdout.buffer
        for item in found:
            if item is None:
                out.flush()
            else:
                out.write(encode_json(item) + b"\n")
        return
    growing = GrowingTable(LOG_HEADERS)
    rows: list[tuple[Any, ...]] = []
    for item in found:
        if item is not None:
            rows.append(log_row(item))
        if item is None or len(rows) >= TABLE_PAGE:
            _print_lines(growing.lines(rows))
            rows.clear()
    _print_lines(growing.lines(rows))


def _print_lines(lines: Iterable[str]) -> None:
    """Lines to stdout at once, flushed (a follower reads them as they come)."""
    text = "\n".join(lines)
    if text:
        print(text, flush=True)


def log_row(e: LogEntry) -> tuple[Any, ...]:
    """One position as a row of the log table."""
    detail = " ".join(f"{k}={encode_json(v).decode()}" for k, v in fields(e.event).items())
    return (e.position, e.at.isoformat(timespec="seconds"), e.actor, e.type, e.event.id, detail)


def cmd_networks(service: NetworkService | None, args: argparse.Namespace) -> int:
    """List the networks (all, or those the filters pass) with position and effective mode."""
    query = NetworksQuery(
        effective=Mode(args.effective) if args.effective else None,
        restart_pending=True if args.restart_pending else None,
        name_prefix=args.name_prefix,
    )
    damaged: list[DamagedLog] = []
    if service is None:
        from ctilink.adapters.nats.remote import list_networks  # only --nats loads nats-py

        listing: Iterable[NetworkSummary] = list_networks(args.nats, query, nats_options(args))
    else:
        # A page at a time from the index: 100,000 networks are never held at once.
        lines = each_line(cast(NetworkService, service), query.filters(unpaged=True), damaged)
        listing = (NetworkSummary.of(line) for line in lines)
    if args.json:
        emit_json_array(listing)
    else:
        print_table(
            ("network", "position", "effective"),
            ((n.network, n.position, n.effective) for n in listing),
        )
    for error in damaged:
        print(f"ctilink: {error}", file=sys.stderr)
    return 2 if damaged else 0


def _name_prefix(text: str) -> str:
    """argparse type for --name-prefix: the start of a network name."""
    if not is_name(text):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not the start of a network name (1-64 of A-Z a-z 0-9 _ -)"
        )
    return text


def register(verbs: argparse._SubParsersAction, parents: Parents) -> None:
    """Add the commands to the parser."""
    p = verbs.add_parser("log", parents=parents.both)
    p.add_argument("network")
    p.add_argument(
        "--type",
        action="append",
        choices=EVENT_TYPES,
        metavar="TYPE",
        help="only events of this type; repeat for more (any type of SPEC §2)",
    )
    p.add_argument(
        "--since",
        type=position_or_time,
        metavar="P|T",
        help="from position P, or from the first position after the last one recorded "
        "before time T (RFC 3339)",
    )
    p.add_argument(
        "--until",
        type=position_or_time,
        metavar="P|T",
        help="up to position P, or up to the position `status --at-time T` shows",
    )
    p.add_argument(
        "--limit", type=positive, metavar="N", help="at most N positions (page on with --since)"
    )
    p.add_argument(
        "--follow",
        action="store_true",
        help="go on printing positions as they are committed, until SIGINT or SIGTERM",
    )
    p.set_defaults(run=cmd_log)
    p = verbs.add_parser("networks", parents=parents.both)
    p.add_argument(
        "--effective", choices=[mode.value for mode in Mode], help="only networks in this mode"
    )
    p.add_argument(
        "--restart-pending",
        action="store_true",
        help="only networks whose setting waits for a portal restart",
    )
    p.add_argument("--name-prefix", type=_name_prefix, metavar="P", help="only names starting so")
    add_connection_arguments(p, "ask a running `ctilink serve` instead of the store")
    p.set_defaults(run=cmd_networks, asks_service=True)
