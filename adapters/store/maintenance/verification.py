"""Tamper evidence: recompute every network's hash chain from the rows the store holds.

Every log position stores chain_n = BLAKE2b-256(chain_{n-1} || the event as logged),
chain_0 = GENESIS (domain/network.py `link`). Verifying a network reads its rows
in position order straight from the recorder (never through a snapshot or a
cache), checks its snapshots against them, and stops at the first position that
is not what an untouched log would hold:

- `unreadable`: the row cannot be decoded, or is not the record its position
  needs (position 1 is `portal_installed`, every later one a recorded event);
- `gap`: positions do not run 1, 2, 3, … (a row was deleted or renumbered);
- `chain`: the stored hash differs from the one recomputed from the log so far
  (an event edited, or rows swapped);
- `fingerprint`: the stored idempotency digest (I3) is not the event's own;
- `replay`: the event cannot be applied to the state before it;
- `snapshot`: a stored snapshot is not the log folded to its position, or does
  not carry that position's hash (snapshots answer `status`, so they count too);
- `truncated`: the log ends before a position that is known to exist (a snapshot
  beyond the end, or the head given to `verify --head`);
- `head`: the hash at the position given to `verify --head` is not the one given;
- `index`: the id index (I3's lookups) lacks a position's id, places it
  elsewhere, or holds ids the log does not; or the network index's line of
  the network is not what its log folds to, or names a network with no log
  (`ctilink reindex` rebuilds both).

A consistent rewrite (an event edited and every later hash recomputed) leaves
nothing inside the store to compare with: only a head kept elsewhere
(`ctilink head`) catches it. The time an event was received is covered only for
events that had no `at` (it then stands in for `at`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ctilink.adapters.store.maintenance.chain_walk import Problem, Walk
from ctilink.adapters.store.queries.networks import indexed_names
from ctilink.domain.application import NetworkService
from ctilink.domain.errors import UnknownNetwork
from ctilink.domain.network import GENESIS


class Head(msgspec.Struct, frozen=True):
    """A network's last position and its chain hash, to keep outside the store."""

    network: str
    position: int
    hash: str  # hex

    def token(self) -> str:
        """`POSITION:HASH`, as `verify --head` takes it."""
        return f"{self.position}:{self.hash}"


class Verdict(msgspec.Struct, frozen=True):
    """`verify --json`: one network's result; `position`/`hash` are its head as stored."""

    network: str
    ok: bool
    position: int
    hash: str | None
    problem: Problem | None


class Tampered(Exception):
    """A network's stored head cannot be read."""


def parse_head(text: str) -> tuple[int, bytes]:
    """`POSITION:HASH` (decimal, 64 hex digits) -> (position, hash); raises ValueError."""
    position_text, sep, hex_text = text.partition(":")
    if not sep:
        raise ValueError("expected POSITION:HASH")
    position = int(position_text)
    digest = bytes.fromhex(hex_text)
    if position < 1 or len(digest) != len(GENESIS):
        raise ValueError("expected a position from 1 and a 64-digit hex hash")
    return position, digest


def head(service: NetworkService, name: str) -> Head:
    """The network's last position and the hash stored there; raises UnknownNetwork."""
    position, chain = _stored_head(service, name)
    if chain is None:
        raise Tampered(f"the last position of {name!r} cannot be read; run `ctilink verify`")
    return Head(name, position, chain.hex())


def verify(
    service: NetworkService, name: str, expected: tuple[int, bytes] | None = None
) -> Verdict:
    """Recompute one network's chain; `expected` is a (position, hash) kept elsewhere."""
    last, stored = _stored_head(service, name)
    walk = Walk(service, name, watch=expected[0] if expected else None)
    problem = walk.run()
    if problem is None and expected is not None:
        problem = walk.against(*expected)
    return Verdict(
        network=name,
        ok=problem is None,
        position=last,
        hash=None if stored is None else stored.hex(),
        problem=problem,
    )


def strays(service: NetworkService, names: list[str]) -> list[Verdict]:
    """Lines of the network index for networks the log does not hold (whole-store verify)."""
    recorder: Any = service.recorder
    if not recorder.networks_complete():
        return []
    known = set(names)
    reason = "the network index lists a network the log does not hold (ctilink reindex rebuilds it)"
    # A name edited by hand may not even be text: shown as it is, sorted as text.
    stray = sorted({name for name in indexed_names(recorder) if name not in known}, key=str)
    return [
        Verdict(
            network=str(name), ok=False, position=0, hash=None, problem=Problem(0, "index", reason)
        )
        for name in stray
    ]


def _stored_head(service: NetworkService, name: str) -> tuple[int, bytes | None]:
    """The last row's position and the hash stored there (None when it cannot be read)."""
    rows = service.recorder.select_events(name, desc=True, limit=1)
    if not rows:
        raise UnknownNetwork(name)
    try:
        return rows[0].originator_version, service.mapper.to_domain_event(rows[0]).chain
    except Exception:  # a tampered row can fail in many ways
        return rows[0].originator_version, None
