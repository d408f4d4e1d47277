"""Messages no partition reads: published to the literal subject `ctilink.in.*` or `ctilink.in.>`.

JetStream stores them as sent, untransformed (three tokens where every routed
message has four), and no consumer can name them alone beside the partitions'
(NATS treats those subjects as wildcards in every filter). So the instance that
holds the sweeper role looks for them every few seconds, rejects each (kept and
published like any rejection, decided once by its stream sequence) and deletes
it from the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ctilink.adapters.nats.ingestor import Ingestor
from ctilink.adapters.nats.streams import IN_STREAM, in_source
from ctilink.adapters.store.coordination.roles import SWEEPER, Roles
from ctilink.adapters.store.coordination.waiting import first_line, wait_or_stop
from ctilink.domain.arrivals import Arrival
from ctilink.domain.decoding import Invalid, named

UNROUTED = "ctilink.in.*"  # as a filter: the three-token subjects, the strays only
SWEEP_SECONDS = 5.0
MAX_WALK = 100_000  # sequences looked at in one sweep for a stray `ctilink.in.>`


async def sweep(js: JetStreamContext, ingestor: Ingestor, stream_epoch: str) -> int:
    """Reject and delete every stray message; how many there were."""
    info = await js.stream_info(IN_STREAM, subjects_filter=UNROUTED)
    strays = info.state.subjects or {}
    if not strays:
        return 0
    found: list[int] = []
    if UNROUTED in strays:  # the literal `*` answers to the filter itself
        seq = info.state.first_seq
        while True:
            try:
                msg = await js.get_msg(IN_STREAM, seq=seq, next=True, subject=UNROUTED)
            except NotFoundError:
                break
            found.append(msg.seq or 0)
            seq = (msg.seq or 0) + 1
    if set(strays) - {UNROUTED}:  # `>` answers to no filter: walk the sequences
        last = min(info.state.last_seq, info.state.first_seq + MAX_WALK)
        for seq in range(info.state.first_seq, last + 1):
            try:
                msg = await js.get_msg(IN_STREAM, seq=seq)
            except NotFoundError:
                continue  # acked and gone
            if msg.subject is not None and msg.subject.count(".") == 2:
                found.append(seq)
    for seq in sorted(set(found)):
        await _reject(js, ingestor, seq, in_source("unrouted", stream_epoch))
    return len(set(found))


async def _reject(js: JetStreamContext, ingestor: Ingestor, seq: int, source: str) -> None:
    """Keep the stray's rejection (once, by its sequence), then delete it from the stream."""
    msg = await js.get_msg(IN_STREAM, seq=seq)
    data = msg.data or b""
    event = Invalid(
        named(data, "id"),
        f"the subject {msg.subject!r} names no network: publish to ctilink.in.<network>",
    )
    await ingestor.ingest([Arrival(event, source, seq, named(data, "network"), data)])
    with contextlib.suppress(NotFoundError):  # deleted by a sweeper before us
        await js.delete_msg(IN_STREAM, seq)


async def sweep_while_holding(
    js: JetStreamContext,
    ingestor: Ingestor,
    roles: Roles,
    stop: asyncio.Event,
    log: Callable[[str], None],
    stream_epoch: str,
) -> None:
    """Sweep every few seconds while this instance holds the sweeper role, until `stop`."""
    try:
        while not stop.is_set():
            await wait_or_stop(stop, SWEEP_SECONDS)
            if stop.is_set() or not await asyncio.to_thread(roles.take, SWEEPER):
                continue
            await _sweep_once(js, ingestor, log, stream_epoch)
    finally:
        await asyncio.to_thread(roles.give_up, SWEEPER)


async def _sweep_once(
    js: JetStreamContext, ingestor: Ingestor, log: Callable[[str], None], stream_epoch: str
) -> None:
    """One sweep, its failure logged (NATS or the store away: the next sweep tries again)."""
    try:
        count = await sweep(js, ingestor, stream_epoch)
    except Exception as error:
        log(f"stray messages not swept: {type(error).__name__}: {first_line(error)}")
        return
    if count:
        log(f"rejected {count} messages sent to a literal wildcard subject")
