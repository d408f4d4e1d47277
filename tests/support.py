"""Builders for inbound events and a given-when-then harness over a real store."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgspec

from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.decision import Outcome
from ctilink.projections.directory import directory
from ctilink.projections.status import status

ROOT = Path(__file__).resolve().parents[1]  # the checkout
_ids = itertools.count(1)


def ev(type_: str, network: str = "acme", **fields: Any) -> dict[str, Any]:
    """One inbound event as a JSON-ready dict, with a fresh id unless given."""
    fields.setdefault("id", f"ev-{next(_ids)}")
    return {"type": type_, "network": network, **fields}


def decode(event: dict[str, Any]) -> m.Message:
    """Decode a dict exactly as a JSON line would be."""
    return m.decode(msgspec.json.encode(event))


class Harness:
    """Given past events, when one more arrives, then check outcome and views."""

    def __init__(self, service: NetworkService) -> None:
        self.service = service

    def given(self, *events: dict[str, Any]) -> Harness:
        """Apply events that must all be accepted."""
        outcomes = self.service.ingest([decode(e) for e in events])
        bad = [(e, o) for e, o in zip(events, outcomes, strict=True) if o.outcome != "accepted"]
        assert not bad, f"given events were not accepted: {bad}"
        return self

    def when(self, event: dict[str, Any]) -> Outcome:
        """Apply one event and return its outcome."""
        return self.service.ingest([decode(event)])[0]

    def status(self, network: str = "acme", at: int | None = None) -> dict[str, Any]:
        """The SPEC §8 status document as plain JSON data."""
        state, position = self.service.state_at(network, at)
        return msgspec.to_builtins(status(state, position))

    def directory(self, network: str = "acme", at: int | None = None) -> dict[str, Any]:
        """The SPEC §8 directory document as plain JSON data."""
        state, position = self.service.state_at(network, at)
        return msgspec.to_builtins(directory(state, position))


def installed(platform: str = "linux_server_edition", **fields: Any) -> dict[str, Any]:
    """A portal_installed event."""
    return ev("portal_installed", platform=platform, **fields)


def system(
    name: str, role: str = "expansion", platform: str = "linux", **fields: Any
) -> dict[str, Any]:
    """A system_added event."""
    address = fields.pop("address", f"10.0.0.{sum(name.encode()) % 250 + 1}")
    return ev("system_added", system=name, role=role, platform=platform, address=address, **fields)


def configure(kind: str, name: str) -> dict[str, Any]:
    """A provider_configured event."""
    return ev("provider_configured", kind=kind, system=name)


def remove(kind: str, name: str) -> dict[str, Any]:
    """A provider_removed event."""
    return ev("provider_removed", kind=kind, system=name)


def same_but_position(before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Two documents equal in everything but their position."""
    return {**before, "position": None} == {**after, "position": None}


def cli(capsys: Any, *args: str) -> tuple[int, str, str]:
    """One `ctilink` command run in this process: (exit status, stdout, stderr)."""
    from ctilink.adapters.cli.main import main

    rc = main(list(args))
    out, err = capsys.readouterr()
    return rc, out, err
