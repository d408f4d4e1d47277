"""The directory document of SPEC §8 (rules D1–D4)."""

from __future__ import annotations

import msgspec

from ctilink.domain.state import NetworkState
from ctilink.projections.providers import providers
from ctilink.projections.status import serving, via


class SystemEntry(msgspec.Struct, frozen=True):
    """One visible system-directory entry."""

    name: str
    number: str
    system: str
    via: str


class PersonalEntry(msgspec.Struct, frozen=True, order=True):
    """One personal-directory entry; sorts by name, number."""

    name: str
    number: str


class Directory(msgspec.Struct, frozen=True):
    """The whole directory document."""

    network: str
    position: int
    system: list[SystemEntry]
    personal: dict[str, list[PersonalEntry]]


def system_entries(state: NetworkState) -> list[SystemEntry]:
    """D1, D2: entries of systems whose dsml row has a via, minus ex-directory ones."""
    serve = serving(state, providers(state))
    entries = []
    for system, listed in state.directories.items():
        served_by = via(serve, system, "dsml")
        if served_by is not None:
            entries += [
                SystemEntry(e.name, e.number, system, served_by)
                for e in listed
                if not e.ex_directory
            ]
    entries.sort(key=lambda e: (e.system, e.name, e.number))
    return entries


def personal_entries(state: NetworkState) -> dict[str, list[PersonalEntry]]:
    """D3, D4: every known user, with [] until their host reports."""
    return {
        user: sorted(PersonalEntry(e.name, e.number) for e in state.personal.get(user, ()))
        for user in sorted(state.users)
    }


def directory(state: NetworkState, position: int) -> Directory:
    """The directory document right after `position`."""
    return Directory(
        network=state.name,
        position=position,
        system=system_entries(state),
        personal=personal_entries(state),
    )
