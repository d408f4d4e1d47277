"""Ingest with several worker processes, each owning a share of the networks."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from multiprocessing import get_context
from multiprocessing.connection import Connection

import msgspec

from ctilink.adapters import bootstrap
from ctilink.adapters.errors import UserError
from ctilink.adapters.ingest.lines import BATCH_LINES, Line, LineReport, ingest_lines
from ctilink.adapters.lifetime import die_with_parent

Lines = list[Line]
Items = list[Line | LineReport]  # lines to decide, and lines decided before


class _NetworkOnly(msgspec.Struct):
    network: str


_peek = msgspec.json.Decoder(_NetworkOnly).decode


STOPPED = (
    "an ingest worker stopped unexpectedly; what was reported is durable: "
    "run the same command again to go on"
)


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


def _serve(store: str, pipe: Connection, source: str | None, batch: int, parent: int) -> None:
    """A worker: ingest each share it is sent, answer with the line reports."""
    # Killed with its parent: an orphan committing its share while a re-run of the
    # same file decides those lines too would decide them twice.
    die_with_parent(parent)
    service = bootstrap.service(store)
    try:
        while True:
            try:
                share: Lines | None = pipe.recv()
            except (EOFError, ConnectionError):  # the parent is gone
                return
            if share is None:
                return
            reports: list[LineReport] = []
            ingest_lines(service, share, reports.append, batch_lines=batch, source=source)
            try:
                pipe.send(reports)
            except ConnectionError:  # the parent is gone: what was committed stays
                return
    finally:
        service.close()


def _chunks(lines: Iterator[Line | LineReport], size: int) -> Iterator[Items]:
    """Consecutive lists of at most `size` lines."""
    while chunk := list(itertools.islice(lines, size)):
        yield chunk


class Workers:
    """Worker processes, one pipe each, stopped on exit."""

    def __init__(
        self, store: str, count: int, source: str | None = None, batch: int = BATCH_LINES
    ) -> None:
        # spawn, not fork: a forked child would share the parent's SQLite handles.
        context = get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(count):
            ours, theirs = context.Pipe()
            process = context.Process(
                target=_serve, args=(store, theirs, source, batch, os.getpid()), daemon=True
            )
            process.start()
            theirs.close()
            self.pipes.append(ours)
            self.processes.append(process)

    def send(self, chunk: Lines) -> None:
        """Give each worker its share of one chunk."""
        shares: list[Lines] = [[] for _ in self.pipes]
        for line in chunk:
            shares[route(line.raw, len(self.pipes))].append(line)
        for pipe, share in zip(self.pipes, shares, strict=True):
            try:
                pipe.send(share)
            except ConnectionError:
                raise WorkerFailed(STOPPED) from None

    def receive(self) -> Iterator[LineReport]:
        """The reports of the oldest chunk sent, merged back into line order."""
        answers = []
        for pipe in self.pipes:
            try:
                answers.append(pipe.recv())
            except (EOFError, ConnectionError):
                raise WorkerFailed(STOPPED) from None
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
    lines: Iterator[Line | LineReport],
    report: Callable[[LineReport], None],
    workers: int,
    source: str | None = None,
    batch: int = BATCH_LINES,
) -> None:
    """Like ingest_lines(), with the networks shared out among `workers` processes."""
    pool = Workers(store, workers, source, batch)
    # Chunks go out from their own thread: a worker busy sending a large reply
    # does not read, and a parent blocked sending to it would never read that
    # reply (both pipes full: a deadlock). One chunk is kept queued ahead.
    sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ctilink-send")
    try:
        sent: deque[tuple[Future[None], list[LineReport]]] = deque()
        for chunk in _chunks(lines, batch * workers):
            to_decide = [item for item in chunk if isinstance(item, Line)]
            decided_before = [item for item in chunk if isinstance(item, LineReport)]
            sent.append((sender.submit(pool.send, to_decide), decided_before))
            if len(sent) == 2:
                _report(pool, *sent.popleft(), report)
        while sent:
            _report(pool, *sent.popleft(), report)
    finally:
        sender.shutdown(wait=False, cancel_futures=True)
        pool.close()


def _report(
    pool: Workers,
    sending: Future[None],
    decided_before: list[LineReport],
    report: Callable[[LineReport], None],
) -> None:
    """Report the oldest chunk's lines, in order, once its workers have answered."""
    for line in heapq.merge(pool.receive(), decided_before, key=lambda r: r.line):
        report(line)
    sending.result()  # surfaces an error of the send itself
