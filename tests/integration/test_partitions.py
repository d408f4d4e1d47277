"""Inbound partitions shared out between instances, each consumed by one at a time."""

from __future__ import annotations

import asyncio
import time

from ctilink.adapters.nats.partitions import Partitions
from ctilink.adapters.nats.streams import PARTITIONS
from ctilink.adapters.store.roles import open_roles


class Recorder:
    """A stand-in worker that notes which partitions run, and finishes when stopped."""

    running: set[int]

    def __init__(self, partition: int, running: set[int]) -> None:
        self.partition, self.running = partition, running

    async def run(self, stop: asyncio.Event) -> None:
        assert self.partition not in self.running, "two workers on one partition"
        self.running.add(self.partition)
        await stop.wait()
        self.running.discard(self.partition)

    async def close(self) -> None:
        pass


def instance(store: str, running: set[int]) -> Partitions:
    async def start(partition: int) -> Recorder:
        return Recorder(partition, running)

    return Partitions(open_roles(store), PARTITIONS, start)


async def settle(*instances: Partitions, rounds: int = 3) -> None:
    for _ in range(rounds):
        for each in instances:
            await each.balance()
        await asyncio.sleep(0.05)


async def test_instances_share_the_partitions_and_take_over_a_stopped_ones_share(
    store_path, store_kind
):
    running: set[int] = set()
    first = instance(store_path, running)
    await settle(first)
    assert sorted(first.owned) == list(range(PARTITIONS))

    second = instance(store_path, running)
    await settle(first, second)
    owned = [set(first.owned), set(second.owned)]
    assert not owned[0] & owned[1]  # one consumer per partition
    assert owned[0] | owned[1] == set(range(PARTITIONS))  # every partition consumed
    if store_kind == "postgresql":
        assert [len(o) for o in owned] == [PARTITIONS // 2] * 2  # the work is shared
    else:
        assert owned[1] == set()  # one serving instance per SQLite file: a standby

    # The first instance dies: its roles go with its session, the second takes all.
    for partition in list(first.owned):
        first.owned.pop(partition).stop.set()
    first.roles.close()
    deadline = time.monotonic() + 10
    while len(second.owned) < PARTITIONS:
        assert time.monotonic() < deadline, sorted(second.owned)
        await settle(second, rounds=1)
    for partition in list(second.owned):
        await second.release(partition)
    second.roles.close()


class Failing(Recorder):
    """A worker whose first run fails, as a consumer does when NATS refuses its acks."""

    failures = 0

    async def run(self, stop: asyncio.Event) -> None:
        if Failing.failures == 0:
            Failing.failures += 1
            raise ConnectionError("acks refused")
        await super().run(stop)


async def test_a_failed_partition_consumer_is_started_afresh_not_left_behind(store_path):
    Failing.failures = 0
    running: set[int] = set()
    logged: list[str] = []

    async def start(partition: int) -> Recorder:
        return (Failing if partition == 0 else Recorder)(partition, running)

    partitions = Partitions(open_roles(store_path), PARTITIONS, start, log=logged.append)
    await settle(partitions, rounds=4)
    assert running == set(range(PARTITIONS))
    assert any("partition 0: its consumer failed: acks refused" in line for line in logged)
    for partition in list(partitions.owned):
        await partitions.release(partition)
    partitions.roles.close()
