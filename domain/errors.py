"""Why an event is rejected: the error codes of SPEC §3 (I1, I2), and the queries' errors."""

from __future__ import annotations

from enum import StrEnum


class Code(StrEnum):
    """A rejection's error code, in the order I2 checks them."""

    INVALID = "invalid"
    NOT_INSTALLED = "not_installed"
    ALREADY_INSTALLED = "already_installed"
    CENTRAL_NOT_AVAILABLE = "central_not_available"
    WRONG_SETTING = "wrong_setting"
    ALREADY_CONVERTED = "already_converted"
    UNKNOWN_SYSTEM = "unknown_system"
    DUPLICATE_SYSTEM = "duplicate_system"
    ROLE_TAKEN = "role_taken"
    UNKNOWN_USER = "unknown_user"
    NOT_HOST_SYSTEM = "not_host_system"
    TOO_MANY_ENTRIES = "too_many_entries"
    ID_CONFLICT = "id_conflict"
    # Not a rule of the SPEC: the network's stored log cannot be read (the store was
    # damaged), so nothing can be decided for it until it is repaired.
    LOG_DAMAGED = "log_damaged"


class Rejected(Exception):
    """An event that breaks a rule: nothing is appended."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class DamagedLog(Exception):
    """A stored position cannot be read, or does not follow the one before it."""

    def __init__(self, network: str, position: int, reason: str) -> None:
        super().__init__(
            f"network {network!r} cannot be read at position {position} ({reason}); "
            f"run `ctilink verify {network}`"
        )
        self.network = network
        self.position = position
        self.reason = reason


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
