"""The service's single writer: batches of concurrent consumers share one commit (I4)."""

from __future__ import annotations

import asyncio
import threading
import time

from ctilink.adapters.nats.ingestor import Ingestor
from ctilink.domain.decision import Outcome


class SlowService:
    """Stands in for NetworkService.ingest: slow, and not to be entered twice at once."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.inside = 0
        self.most_inside = 0
        self.lock = threading.Lock()

    def ingest(self, messages: list[str]) -> list[Outcome]:
        with self.lock:
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        time.sleep(0.05)
        self.calls.append(list(messages))
        with self.lock:
            self.inside -= 1
        return [Outcome("accepted", position=int(m[1:])) for m in messages]


async def test_batches_waiting_during_a_commit_share_the_next_and_each_gets_its_own_outcomes():
    service = SlowService()
    ingestor = Ingestor(service)  # type: ignore[arg-type]

    first = asyncio.ensure_future(ingestor.ingest(["e1"]))
    await asyncio.sleep(0.01)  # e1's commit is running
    rest = [asyncio.ensure_future(ingestor.ingest([f"e{n}", f"e{n + 1}"])) for n in (2, 4)]
    results = await asyncio.gather(first, *rest)

    assert [[o.position for o in r] for r in results] == [[1], [2, 3], [4, 5]]
    assert service.calls == [["e1"], ["e2", "e3", "e4", "e5"]]


async def test_a_cancelled_caller_neither_stops_the_commit_nor_lets_a_second_run_beside_it():
    service = SlowService()
    ingestor = Ingestor(service)  # type: ignore[arg-type]

    doomed = asyncio.ensure_future(ingestor.ingest(["e1"]))
    await asyncio.sleep(0.01)
    doomed.cancel()  # as api.stop() cancels a request in progress
    later = await ingestor.ingest(["e2"])
    await ingestor.close()

    assert [o.position for o in later] == [2]
    assert service.calls == [["e1"], ["e2"]]  # e1 committed all the same
    assert service.most_inside == 1
