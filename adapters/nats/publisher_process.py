"""The publisher in a process of its own: started by `serve`, gone when `serve` is gone."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable

PARENT_ENV = "CTILINK_SERVE_PID"
ORPHAN_GRACE_SECONDS = 5.0


async def supervise(command: list[str], env: dict[str, str], stop: asyncio.Event) -> None:
    """Run the publisher process until `stop`; its unexpected end is an error."""
    child = await asyncio.create_subprocess_exec(
        *command, env={**env, PARENT_ENV: str(os.getpid())}
    )
    exited = asyncio.ensure_future(child.wait())
    stopping = asyncio.ensure_future(stop.wait())
    await asyncio.wait([exited, stopping], return_when=asyncio.FIRST_COMPLETED)
    if not stop.is_set():
        stopping.cancel()
        raise RuntimeError(f"the publisher process ended (status {child.returncode})")
    if child.returncode is None:
        child.terminate()  # it publishes what is committed, then exits
        try:
            await asyncio.wait_for(exited, 30)
        except TimeoutError:
            child.kill()
            await exited


async def stop_when_orphaned(stop: asyncio.Event, log: Callable[[str], None]) -> None:
    """Set `stop` once the parent process is gone (killed without telling us)."""
    # The serving process names itself: it may be gone before this line runs.
    parent = int(os.environ.get(PARENT_ENV, os.getppid()))
    while os.getppid() == parent:
        await asyncio.sleep(0.5)
    log("the serving process is gone; publisher stopping")
    stop.set()
    # NATS may be gone too: whatever is unpublished is published by the next
    # start (positions are recorded only once acknowledged), so do not linger.
    await asyncio.sleep(ORPHAN_GRACE_SECONDS)
    os._exit(0)
