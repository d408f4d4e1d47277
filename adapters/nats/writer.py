"""The committing work of `serve` in a process of its own: decode, decide, commit.

The serving process runs the NATS side (pulls, acks) and answers queries;
deciding and committing a batch is CPU work that would hold Python's
interpreter lock, and its garbage collector, over them. A child process does
it: it gets a batch of deliveries over a pipe and answers with their outcomes
once they are committed. It dies with `serve`; if it dies first, the batch in
hand is retried on a new one, and the partitions' recorded positions say what
was committed already.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
from multiprocessing import get_context
from multiprocessing.connection import Connection
from typing import Any

from eventsourcing.persistence import IntegrityError, InterfaceError, OperationalError

from ctilink.adapters.lifetime import die_with_parent, yield_cores
from ctilink.domain.decision import Outcome

# What the child says went wrong, by kind, so that the parent raises what its
# callers wait out (a store away) or report (anything else).
AWAY, CONFLICT, FAILED = "away", "conflict", "failed"


class WriterFailed(OperationalError):
    """The writer process stopped, or its store is away: the batch is retried."""


class WriterError(RuntimeError):
    """The writer process could not commit a batch, for a reason no retry mends."""


def _serve(store: str, pipe: Connection, parent: int) -> None:
    """The child: commit each batch it is sent; answer with kinds and outcomes, or why not."""
    die_with_parent(parent)
    from ctilink.adapters import bootstrap
    from ctilink.adapters.nats.ingestor import resolved
    from ctilink.adapters.ops.metrics import source_kind
    from ctilink.adapters.store.selection import StoreAway

    yield_cores()
    # Batches make many short-lived objects and few cycles: collect seldom, and
    # never again what was made before the first batch.
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    service = None
    try:  # opened ahead of the first batch; if it cannot be, that batch says why
        service = bootstrap.service(store)
    except Exception:
        service = None
    try:
        while True:
            try:
                items = pipe.recv()
            except (EOFError, ConnectionError):  # the parent is gone
                return
            if items is None:
                return
            try:
                if service is None:
                    service = bootstrap.service(store)
                arrivals = resolved(items)
                outcomes = service.ingest(arrivals)
                answer: tuple[Any, ...] = ("ok", [source_kind(a) for a in arrivals], outcomes)
            except (OperationalError, InterfaceError, StoreAway) as error:
                answer = (AWAY, str(error))
            except IntegrityError as error:
                answer = (CONFLICT, str(error))
            except Exception as error:
                answer = (FAILED, f"{type(error).__name__}: {error}")
            try:
                pipe.send(answer)
            except ConnectionError:  # the parent is gone: what was committed stays
                return
    finally:
        if service is not None:
            service.close()


class Writer:
    """A child process that commits batches for `serve`; started again if it dies."""

    def __init__(self, store: str) -> None:
        self.store = store
        self._context = get_context("spawn")  # never a fork of a process with threads
        self._lock = threading.Lock()  # one batch at a time on the pipe
        self._pipe: Connection | None = None
        self._process: Any = None

    def start(self) -> None:
        """Start the child (before the first batch, so that it is ready)."""
        ours, theirs = self._context.Pipe()
        self._process = self._context.Process(
            target=_serve, args=(self.store, theirs, os.getpid()), daemon=True
        )
        self._process.start()
        theirs.close()
        self._pipe = ours

    def commit(self, items: list[Any]) -> tuple[list[str], list[Outcome]]:
        """Commit a batch in the child (blocking: call it from a thread); kinds and outcomes."""
        with self._lock:
            if self._pipe is None or not self._process.is_alive():
                self.start()
            assert self._pipe is not None
            try:
                self._pipe.send(items)
                answer = self._pipe.recv()
            except (EOFError, ConnectionError, OSError):
                self._pipe = None  # started again for the next batch
                raise WriterFailed("the writer process stopped; the batch is retried") from None
        kind, *rest = answer
        if kind == "ok":
            return rest[0], rest[1]
        if kind == AWAY:
            raise WriterFailed(rest[0])
        if kind == CONFLICT:
            raise IntegrityError(rest[0])
        raise WriterError(rest[0])

    def close(self) -> None:
        """Stop the child after the batch in hand, and wait for it."""
        with self._lock:
            if self._pipe is not None:
                with contextlib.suppress(OSError):  # it is gone already
                    self._pipe.send(None)
            if self._process is not None:
                self._process.join(timeout=30)
                if self._process.is_alive():
                    self._process.kill()
