"""The preview panel and page: a setting change or the conversion, decided on a copy.

The panel offers what the mode machine (domain/mode.py) allows from the
configured mode now; the rules may still refuse one (M2: Central CTI Link on
another platform), and the preview then shows the rejection. The page is a
GET: it decides the event, and with `then_restart` a portal restart after it,
with `NetworkService.preview` (nothing is committed; the console never writes)
and shows what would change at once and after the restart (projections/preview.py).
"""

from __future__ import annotations

import msgspec

from ctilink.adapters.web.reads import BadQuery
from ctilink.domain import messages as m
from ctilink.domain.application import NetworkService
from ctilink.domain.mode import Mode, next_mode, setting_trigger
from ctilink.projections.preview import Preview, preview_id, previewed

SETTINGS = ("converted_to_central", "central_cti_link_set", "auto_provisioning_set")
WORDS = {
    "converted_to_central": "Convert to Central CTI Link",
    "central_cti_link_set": "Central CTI Link",
    "auto_provisioning_set": "Auto Provisioning",
}


class Choice(msgspec.Struct, frozen=True):
    """One change the panel offers: its query, what it is called, whether it changes the mode."""

    event: str
    enabled: bool | None  # None: the conversion, which takes no `enabled`
    title: str
    stays: bool  # M6: it leaves the configured mode as it is

    def query(self, then_restart: bool = True) -> dict[str, str]:
        """The preview page's query for this change."""
        asked = {"event": self.event}
        if self.enabled is not None:
            asked["enabled"] = "true" if self.enabled else "false"
        if then_restart:
            asked["then_restart"] = "1"
        return asked


def setting_event(network: str, event: str, enabled: bool | None) -> m.Message:
    """The setting event a preview decides (its id made up, the same every time)."""
    fields: dict[str, object] = {"type": event, "network": network}
    if enabled is not None:
        fields["enabled"] = enabled
    fields["id"] = preview_id(msgspec.json.encode(fields))
    return msgspec.convert(fields, m.Message)  # type: ignore[arg-type]


def title(event: str, enabled: bool | None) -> str:
    """How the portal's administrator would name the change."""
    if enabled is None:
        return WORDS[event]
    return f"{WORDS[event]} {'on' if enabled else 'off'}"


def choices(network: str, configured: str) -> list[Choice]:
    """The changes the mode machine allows from `configured`, conversion first."""
    found = []
    for event in SETTINGS:
        for enabled in (None,) if event == "converted_to_central" else (True, False):
            made = next_mode(
                Mode(configured), setting_trigger(setting_event(network, event, enabled))
            )
            if made is not None:
                found.append(Choice(event, enabled, title(event, enabled), made == configured))
    return found


class PreviewPage(msgspec.Struct, frozen=True):
    """A preview, and what was asked."""

    preview: Preview
    choice: Choice
    then_restart: bool


def preview_page(service: NetworkService, name: str, query: dict[str, str]) -> PreviewPage:
    """The preview of the change asked for (BadQuery: no such change)."""
    service.head(name)  # UnknownNetwork: 404
    event = query.get("event") or ""
    if event not in SETTINGS:
        raise BadQuery(f"event: {event!r} is not one of {', '.join(SETTINGS)}")
    enabled = _bool(query.get("enabled"), event)
    restart = query.get("then_restart") or ""
    if restart not in ("", "0", "1", "true", "false"):
        raise BadQuery(f"then_restart: {restart!r} is not 1 or 0")
    again = restart in ("1", "true")
    made = previewed(service, setting_event(name, event, enabled), restart=again)
    state, _ = service.state_at(name)
    stays = next_mode(state.configured, setting_trigger(made.event)) == state.configured
    return PreviewPage(made, Choice(event, enabled, title(event, enabled), stays), again)


def _bool(text: str | None, event: str) -> bool | None:
    """`enabled`: needed by a setting, refused for the conversion."""
    if event == "converted_to_central":
        if text:
            raise BadQuery("enabled: converted_to_central takes none")
        return None
    if text not in ("true", "false"):
        raise BadQuery(f"enabled: {text or ''!r} is not true or false ({event} needs it)")
    return text == "true"
