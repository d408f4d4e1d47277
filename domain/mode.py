"""The CTI provisioning mode machine of SPEC §4, as a `transitions` table."""

from __future__ import annotations

from enum import StrEnum

from transitions import Machine

from ctilink.domain import messages as m


class Mode(StrEnum):
    """How the portal provisions its CTI providers."""

    CENTRAL = "central"
    MANUAL = "manual"
    LEGACY_AUTO = "legacy_auto"
    LEGACY_MANUAL = "legacy_manual"


class Setting(StrEnum):
    """The setting the portal shows its administrator (M3)."""

    CENTRAL_CTI_LINK = "central_cti_link"
    AUTO_PROVISIONING = "auto_provisioning"


# M2: the only platform on which Central CTI Link exists.
CENTRAL_PLATFORM = "linux_server_edition"

LEGACY = (Mode.LEGACY_AUTO, Mode.LEGACY_MANUAL)
MODERN = (Mode.CENTRAL, Mode.MANUAL)

# The configured mode's transitions. Self-loops are the settings that leave the
# mode as it was (M6). Nothing leads from a modern mode back to a legacy one:
# conversion cannot be undone (M4).
TRANSITIONS: list[dict[str, object]] = [
    {"trigger": "enable_central", "source": list(MODERN), "dest": Mode.CENTRAL},
    {"trigger": "disable_central", "source": list(MODERN), "dest": Mode.MANUAL},
    {"trigger": "enable_auto_provisioning", "source": list(LEGACY), "dest": Mode.LEGACY_AUTO},
    {"trigger": "disable_auto_provisioning", "source": list(LEGACY), "dest": Mode.LEGACY_MANUAL},
    {"trigger": "convert", "source": list(LEGACY), "dest": Mode.CENTRAL},
]

# One module-level machine with no model: a pure transition table, never bound
# to the aggregate (binding would write callables into its snapshot state).
MACHINE = Machine(
    model=None,
    states=Mode,
    transitions=TRANSITIONS,
    initial=None,
    auto_transitions=False,
    ignore_invalid_triggers=False,
)


def edges_of(machine: Machine) -> dict[tuple[str, Mode], Mode]:
    """Every (trigger, source) a machine allows, with its destination, in table order."""
    # Through transitions' public API; it names enum states by member name.
    return {
        (trigger, Mode[transition.source]): Mode[transition.dest]
        for trigger in machine.get_triggers(*Mode)
        for transition in machine.get_transitions(trigger=trigger)
    }


# Read once, so that a decision is a lookup.
EDGES = edges_of(MACHINE)


def setting_trigger(message: m.Message) -> str:
    """The mode-machine trigger a setting event stands for (M2–M4)."""
    match message:
        case m.CentralCtiLinkSet(enabled=True):
            return "enable_central"
        case m.CentralCtiLinkSet():
            return "disable_central"
        case m.AutoProvisioningSet(enabled=True):
            return "enable_auto_provisioning"
        case m.AutoProvisioningSet():
            return "disable_auto_provisioning"
        case m.ConvertedToCentral():
            return "convert"
    raise TypeError(f"{m.type_of(message)} is not a setting event")


def next_mode(configured: Mode, trigger: str) -> Mode | None:
    """The configured mode after `trigger`, or None when the table forbids it."""
    return EDGES.get((trigger, configured))


def shown_setting(configured: Mode) -> Setting:
    """M3: Auto Provisioning is shown in the legacy modes, Central CTI Link otherwise."""
    return Setting.AUTO_PROVISIONING if configured in LEGACY else Setting.CENTRAL_CTI_LINK


def version_key(version: str) -> tuple[int, ...]:
    """I8: compare versions numerically, padded to four parts."""
    parts = tuple(int(p) for p in version.split("."))
    return parts + (0,) * (4 - len(parts))


def central_available(platform: str) -> bool:
    """M2: whether Central CTI Link exists on the portal's platform."""
    return platform == CENTRAL_PLATFORM


def initial_mode(platform: str, upgraded_from: str | None, auto_provisioning: bool) -> Mode:
    """M1: the mode a portal starts in."""
    if upgraded_from is None:
        return Mode.CENTRAL if central_available(platform) else Mode.MANUAL
    if version_key(upgraded_from) >= version_key("10.0"):
        return Mode.MANUAL
    return Mode.LEGACY_AUTO if auto_provisioning else Mode.LEGACY_MANUAL
