"""A preview: what one event would change, at once and after the next portal restart.

Pure: the caller decides the event on a copy of the network (NetworkService.preview,
which commits nothing), once alone and once followed by a `portal_restarted`
(`then_restart`), and gives the states; this compares each with the status now
(projections/changes.py). Settings change only the configured mode at once (M5):
what the portal would hold, its providers and component rows, follows at the
restart, and conversion cannot be undone (M4).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

import msgspec

from ctilink.domain import messages as m
from ctilink.domain.decision import Outcome
from ctilink.domain.errors import UnknownNetwork
from ctilink.domain.state import NetworkState
from ctilink.projections.changes import Changes, ModeChanges, ProviderChanges, RowChange, compare
from ctilink.projections.status import status

Decided = tuple[NetworkState, int]  # a network's state and its position


class Effect(msgspec.Struct, frozen=True):
    """The status at a position to come, compared with the status now."""

    position: int
    mode: ModeChanges
    providers: ProviderChanges
    components: list[RowChange]

    @property
    def empty(self) -> bool:
        """True when nothing of the status would change."""
        return Changes(self.mode, self.providers, self.components).empty


class Preview(msgspec.Struct, frozen=True):
    """`preview --json`: one event decided on a copy; nothing was committed.

    `position`: the network's position now (null: not installed). `outcome`,
    `code`, `message`: as `ingest` would report the event. `at_once`: the status
    right after it; `after_restart`: after it and a portal restart (when asked);
    each null unless the event would be accepted.
    """

    network: str
    position: int | None
    event: m.Message
    outcome: str
    code: str | None
    message: str | None
    at_once: Effect | None
    after_restart: Effect | None


def preview_id(seed: bytes) -> str:
    """An id for an event made up for a preview: the same for the same seed."""
    return "preview-" + hashlib.blake2b(seed, digest_size=8).hexdigest()


def then_restart(event: m.Message) -> m.PortalRestarted:
    """The portal restart that follows `event` in a preview: same network, its own id."""
    return m.PortalRestarted(id=preview_id(b"restart:" + m.encode(event)), network=event.network)


def effect(before: Decided | None, after: Decided) -> Effect:
    """What the status at `after` changes from the status at `before` (None: not installed)."""
    changes = compare(None if before is None else status(*before), status(*after))
    return Effect(after[1], changes.mode, changes.providers, changes.components)


def preview(
    event: m.Message,
    before: Decided | None,
    outcome: Outcome,
    at_once: Decided | None,
    after_restart: Decided | None = None,
) -> Preview:
    """The preview of `event` on its network as it stands (`before`), from what was decided."""
    accepted = outcome.outcome == "accepted"
    return Preview(
        network=event.network,
        position=None if before is None else before[1],
        event=event,
        outcome=outcome.outcome,
        code=outcome.code,
        message=outcome.message,
        at_once=effect(before, at_once) if accepted and at_once is not None else None,
        after_restart=(
            effect(before, after_restart) if accepted and after_restart is not None else None
        ),
    )


class Deciding(Protocol):
    """What a preview asks of the application service (domain/application.py)."""

    def state_at(self, name: str, position: int | None = None) -> Decided:
        """The network's state now or right after `position`; raises UnknownNetwork."""
        ...

    def preview(self, events: Sequence[m.Message]) -> tuple[list[Outcome], dict[str, Decided]]:
        """What ingest would do, committing nothing."""
        ...


def previewed(service: Deciding, event: m.Message, restart: bool = False) -> Preview:
    """Decide `event` (and, with `restart`, a portal restart after it) on copies: the preview."""
    try:
        before: Decided | None = service.state_at(event.network)
    except UnknownNetwork:
        before = None
    outcomes, after = service.preview([event])
    now = after.get(event.network)
    if now is not None and now[1] > 1 and (before is None or before[1] != now[1] - 1):
        before = service.state_at(event.network, now[1] - 1)  # a commit came in between
    later = None
    if restart and outcomes[0].outcome == "accepted":
        later = service.preview([event, then_restart(event)])[1].get(event.network)
    return preview(event, before, outcomes[0], now, later)
