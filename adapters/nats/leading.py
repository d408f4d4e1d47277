"""Publishing by whichever instance holds the publisher role, one at a time."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from eventsourcing.persistence import IntegrityError

from ctilink.adapters.nats.publisher import Publisher
from ctilink.adapters.store.coordination.roles import PUBLISHER, Roles
from ctilink.adapters.store.coordination.waiting import (
    STORE_AWAY,
    STORE_RETRY_SECONDS,
    first_line,
    wait_or_stop,
)

CHECK_SECONDS = 1.0


async def watch(roles: Roles, role: int, stop: asyncio.Event, lost: asyncio.Event) -> None:
    """Set `lost` when `stop` is set or the role is no longer held."""
    while not stop.is_set():
        if not await asyncio.to_thread(roles.holds, role):
            break
        await wait_or_stop(stop, CHECK_SECONDS)
    lost.set()


async def publish_while_leading(
    roles: Roles,
    make_publisher: Callable[[], Publisher],
    stop: asyncio.Event,
    log: Callable[[str], None],
) -> None:
    """Stand by until this instance takes the publisher role, publish while it holds it."""
    standing_by = False
    while not stop.is_set():
        if not await asyncio.to_thread(roles.take, PUBLISHER):
            if not standing_by:
                log("publisher standing by: another instance publishes")
                standing_by = True
            await wait_or_stop(stop, CHECK_SECONDS)
            continue
        standing_by = False
        log("publishing: this instance holds the publisher role")
        lost = asyncio.Event()
        watching = asyncio.ensure_future(watch(roles, PUBLISHER, stop, lost))
        try:
            # A fresh publisher starts from the stored position: what the previous
            # holder sent but did not record goes again, and JetStream drops it.
            await make_publisher().run(lost)
        except IntegrityError:
            # Another holder recorded a later position meanwhile: ours is stale.
            log("publisher role moved to another instance")
        except STORE_AWAY as error:
            # Whatever was sent but not recorded goes again once the store is back.
            log(f"publisher waiting for the store: {first_line(error)}")
            await wait_or_stop(stop, STORE_RETRY_SECONDS)
        finally:
            watching.cancel()
            await asyncio.to_thread(roles.give_up, PUBLISHER)
        if not stop.is_set():
            log("publisher role lost; standing by")
