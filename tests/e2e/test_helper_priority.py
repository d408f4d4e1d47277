"""serve's bulk helpers yield the cores to the serving process (docs/architecture.md).

The writer (deciding, committing) and the publisher run at a lower scheduling
priority than `serve` itself, so that a query's few milliseconds never queue
behind a batch's hundreds; `serve` keeps the priority it was started with.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from ctilink.adapters.lifetime import HELPER_NICENESS
from tests.e2e.conftest import Service


def children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if parent == pid:
            found[int(entry.name)] = command
    return found


def niceness(pid: int) -> int:
    return os.getpriority(os.PRIO_PROCESS, pid)


async def test_the_writer_and_the_publisher_run_below_serve_and_serve_keeps_its_priority(
    service: Service,
) -> None:
    assert service.process is not None
    serve = service.process.pid
    ours = niceness(os.getpid())
    lowered = min(19, ours + HELPER_NICENESS)
    deadline = time.monotonic() + 20
    while True:
        kids = children(serve)
        writer = [p for p, c in kids.items() if "multiprocessing.spawn" in c]  # not the tracker
        publisher = [p for p, c in kids.items() if " publish " in c]
        if writer and publisher and all(niceness(p) == lowered for p in writer + publisher):
            break
        assert time.monotonic() < deadline, {p: (c, niceness(p)) for p, c in kids.items()}
        await asyncio.sleep(0.1)
    assert niceness(serve) == ours
