"""What differs between two status documents (SPEC §8) of one network: pure, no I/O."""

from __future__ import annotations

from typing import Any

import msgspec

from projections.providers import Provider
from projections.status import ComponentRow, ModeView, Status

MODE_KEYS: tuple[str, ...] = ModeView.__struct_fields__


class ProviderChanges(msgspec.Struct, frozen=True):
    """Providers on one side only (sorted as in §8); an origin change is one of each."""

    added: list[Provider]
    removed: list[Provider]


class RowChange(msgspec.Struct, frozen=True):
    """A component row that differs, by (system, component); None where it does not exist."""

    system: str
    component: str
    before: ComponentRow | None
    after: ComponentRow | None


class Changes(msgspec.Struct, frozen=True):
    """Everything that differs; `mode` maps each changed key to [before, after]."""

    mode: dict[str, tuple[Any, Any]]
    providers: ProviderChanges
    components: list[RowChange]

    @property
    def empty(self) -> bool:
        """True when the documents differ in nothing but their position."""
        return not (self.mode or self.providers.added or self.providers.removed or self.components)


NO_CHANGES = Changes({}, ProviderChanges([], []), [])


def compare(before: Status | None, after: Status) -> Changes:
    """What changed from `before` to `after`; None before: everything in `after` is new."""
    old_mode = None if before is None else before.mode
    mode = {
        key: (None if old_mode is None else getattr(old_mode, key), getattr(after.mode, key))
        for key in MODE_KEYS
        if old_mode is None or getattr(old_mode, key) != getattr(after.mode, key)
    }
    old_providers = set() if before is None else set(before.providers)
    new_providers = set(after.providers)
    old_rows = {} if before is None else {(r.system, r.component): r for r in before.components}
    new_rows = {(r.system, r.component): r for r in after.components}
    rows = [
        RowChange(key[0], key[1], old_rows.get(key), new_rows.get(key))
        for key in sorted(old_rows.keys() | new_rows.keys())  # C1's order
        if old_rows.get(key) != new_rows.get(key)
    ]
    return Changes(
        mode=mode,
        providers=ProviderChanges(
            added=sorted(new_providers - old_providers),
            removed=sorted(old_providers - new_providers),
        ),
        components=rows,
    )
