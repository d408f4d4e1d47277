"""Ingest with several worker processes, each owning a share of the networks."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import BinaryIO

import msgspec

from ctilink.adapters import bootstrap
from ctilink.adapters.errors import UserError
from ctilink.adapters.ingest.lines import BATCH_LINES, LineReport, ingest_lines, read_lines

Lines = list[tuple[int, bytes | None]]


class _NetworkOnly(msgspec.Struct):
    network: str


_peek = msgspec.json.Decoder(_NetworkOnly).decode


class WorkerFailed(UserError):
    """A worker process stopped without answering."""


def route(raw: bytes | None, workers: int) -> int:
    """The worker that owns the line's network (a line without one goes to 0)."""
    # One network always goes to one worker, so its events keep their order (I4).
    if raw is None:
        return 0
    try:
        return zlib.crc32(_peek(raw).network.encode()) % workers
    except msgspec.DecodeError:
        return 0


def _serve(store: str, pipe: Connection) -> None:
    """A worker: ingest each share it is sent, answer with the line reports."""
    service = bootstrap.service(store)
    try:
        while True:
            try:
                share: Lines | None = pipe.recv()
            except EOFError:  # the parent is gone
                return
            if share is None:
                return
            reports: list[LineReport] = []
            ingest_lines(service, share, reports.append)
            pipe.send(reports)
    finally:
        service.close()


def _chunks(lines: Iterator[tuple[int, bytes | None]], size: int) -> Iterator[Lines]:
    """Consecutive lists of at most `size` lines."""
    while chunk := list(itertools.islice(lines, size)):
        yield chunk


class Workers:
    """Worker processes, one pipe each, stopped on exit."""

    def __init__(self, store: str, count: int) -> None:
        # spawn, not fork: a forked child would share the parent's SQLite handles.
        context = get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(target=_serve, args=(store, theirs), daemon=True)
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    def send(self, chunk: Lines) -> None:
        """Give each worker its share of one chunk."""
        shares: list[Lines] = [[] for _ in self.pipes]
        for number, raw in chunk:
            shares[route(raw, len(self.pipes))].append((number, raw))
        for pipe, share in zip(self.pipes, shares, strict=True):
            pipe.send(share)

    def receive(self) -> Iterator[LineReport]:
        """The reports of the oldest chunk sent, merged back into line order."""
        answers = []
        for pipe in self.pipes:
            try:
                answers.append(pipe.recv())
            except EOFError:
                raise WorkerFailed("an ingest worker stopped unexpectedly") from None
        return heapq.merge(*answers, key=lambda r: r.line)

    def close(self) -> None:
        """Ask every worker to stop, and wait for it."""
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # it may be gone already
                pipe.send(None)
        for process in self.processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()


def ingest_parallel(
    store: str,
    stream: BinaryIO,
    report: Callable[[LineReport], None],
    workers: int,
) -> None:
    """Like ingest(), with the networks shared out among `workers` processes."""
    pool = Workers(store, workers)
    # Chunks go out from their own thread: a worker busy sending a large reply
    # does not read, and a parent blocked sending to it would never read that
    # reply (both pipes full: a deadlock). One chunk is kept queued ahead.
    sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctilink-send")
    try:
        sent: deque[Future[None]] = deque()
        for chunk in _chunks(read_lines(stream), BATCH_LINES * workers):
            sent.append(sender.submit(pool.send, chunk))
            if len(sent) == 2:
                _report(pool, sent.popleft(), report)
        while sent:
            _report(pool, sent.popleft(), report)
    finally:
        sender.shutdown(wait=False, cancel_futures=True)
        pool.close()


def _report(pool: Workers, sending: Future[None], report: Callable[[LineReport], None]) -> None:
    """Report the oldest chunk's lines, in order, once its workers have answered."""
    for line in pool.receive():
        report(line)
    sending.result()  # surfaces an error of the send itself
