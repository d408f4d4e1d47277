"""Why an event is rejected: the error codes of SPEC §3 (I1, I2)."""

from __future__ import annotations

CODES = (
    "invalid",
    "not_installed",
    "already_installed",
    "central_not_available",
    "wrong_setting",
    "already_converted",
    "unknown_system",
    "duplicate_system",
    "role_taken",
    "unknown_user",
    "not_host_system",
    "too_many_entries",
    "id_conflict",
)


class Rejected(Exception):
    """An event that breaks a rule: nothing is appended."""

    def __init__(self, code: str, message: str) -> None:
        assert code in CODES, code
        super().__init__(message)
        self.code = code
        self.message = message


class UnknownNetwork(LookupError):
    """A query named a network that has no log."""

    def __init__(self, network: str) -> None:
        super().__init__(f"unknown network {network!r}")
        self.network = network


class PositionOutOfRange(LookupError):
    """A query asked for a position the network's log does not have."""

    def __init__(self, network: str, position: int, head: int) -> None:
        super().__init__(f"position {position} is out of range for network {network!r} (1..{head})")
        self.network = network
        self.position = position
        self.head = head
