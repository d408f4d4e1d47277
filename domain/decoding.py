"""I1 in one place: raw bytes in, a valid event or the reason it is `invalid` out.

Every entry point (a file's line, a NATS message, an API request) decodes here,
so they agree on what is valid and no input can raise past this function.
"""

from __future__ import annotations

import json
import re
from datetime import UTC
from typing import Any

import msgspec

from ctilink.domain import messages as m

MAX_EVENT_BYTES = 1 << 20
# An accepted event is published inside an envelope (network, position, at,
# actor) and with headers: what could never fit NATS's default 1 MiB is refused.
MAX_PUBLISHED_BYTES = MAX_EVENT_BYTES - (8 << 10)
BOM = b"\xef\xbb\xbf"
NUL_ESCAPE = b"\\u0000"  # JSON can carry U+0000 only escaped: a raw 0x00 is no JSON
MAX_MESSAGE_CHARS = 1000  # a reason quotes what was sent: never all of a megabyte
MAX_NAMED_CHARS = 256  # an id or network a rejection names, at most
_AT_PATH = re.compile(r"^(?P<reason>.*) - at `\$\.?(?P<path>[^`]*)`$")
_FRACTION = re.compile(r":[0-9]{2}\.([0-9]+)")  # the seconds' fraction, whatever the separator
_untyped = msgspec.json.Decoder()
_encode = m.encode


class Invalid(msgspec.Struct, frozen=True):
    """Raw bytes that are no valid event (I1), with the id they named, if any."""

    id: str | None
    message: str


class _Named(msgspec.Struct):
    """The envelope fields a rejection report names, whatever else the object holds."""

    id: Any = None
    network: Any = None


_named = msgspec.json.Decoder(_Named).decode


def named(raw: bytes | None, field: str) -> str | None:
    """The string an object's `id` or `network` holds, when the bytes have a usable one.

    Usable: 1 to 256 characters and no U+0000, so that a rejection can keep it as
    text on every store (PostgreSQL refuses U+0000 in text).
    """
    if raw is None:
        return None
    try:
        value = getattr(_named(raw), field)
    except Exception:  # any bytes at all: invalid JSON, bad UTF-8, nesting too deep
        return None
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NAMED_CHARS or "\0" in value:
        return None
    return value


def explain(error: Exception) -> str:
    """A decoding error as a sentence led by the field it concerns."""
    text = str(error)
    if isinstance(error, msgspec.ValidationError):
        found = _AT_PATH.match(text)
        return f"field `{found['path']}`: {found['reason']}" if found else text
    return f"not valid JSON: {text}"


def decode(raw: bytes | str) -> m.Message | Invalid:
    """Decode and validate one event (I1); never raises, whatever the bytes."""
    return decode_encoded(raw)[0]


def decode_encoded(raw: bytes | str) -> tuple[m.Message | Invalid, bytes | None]:
    """decode(), and the event encoded as the log keeps it (None for an invalid one)."""
    # The check for repeated keys encodes the event anyway: the store need not again.
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")  # a lone surrogate fails as bad UTF-8
    elif not isinstance(raw, bytes):
        return Invalid(None, f"not bytes but {type(raw).__name__}"), None
    problem = _check_bytes(raw) or _check_nul(raw)
    if problem is None:
        try:
            message = m.decode(raw)
        except msgspec.DecodeError as error:
            # A repeated key is the likelier cause to name (msgspec kept the last one).
            problem = repeated_key_problem(raw) or explain(error)
        except UnicodeDecodeError:  # inside a string: msgspec checks the bytes as it goes
            problem = _not_utf8(raw)
        except RecursionError:
            problem = "not valid JSON: nested too deeply"
        else:
            encoded = _encode(message)
            problem = _check_object(raw, message, encoded)
            if problem is None:
                return message, encoded
    return Invalid(named(raw, "id"), bounded(problem)), None


def bounded(message: str) -> str:
    """A reason cut to MAX_MESSAGE_CHARS, saying so (it leads with the field it names)."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return f"{message[: MAX_MESSAGE_CHARS - 40]}… [cut: {len(message):,} characters]"


def _check_nul(raw: bytes) -> str | None:
    """I1 (v1.1): where a string, value or key, holds U+0000, if any does."""
    if NUL_ESCAPE not in raw:  # the usual case: one substring search
        return None
    try:
        document = _untyped.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None  # not JSON at all: the decoder says why
    path = _nul_path(document, "")
    if path is None:
        return None  # an escaped backslash followed by u0000: no U+0000 after all
    return f"field `{path}`: holds U+0000 (NUL), which no string may hold"


def _nul_path(value: Any, path: str) -> str | None:
    """The path of the first string (value or key) holding U+0000 under `value`."""
    if isinstance(value, str):
        return (path or "$") if "\0" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            if "\0" in key:
                return inner.replace("\0", "\\u0000")
            found = _nul_path(item, inner)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found is not None:
                return found
    return None


def _check_bytes(raw: bytes) -> str | None:
    """What makes the bytes unreadable before any JSON is parsed, if anything."""
    if len(raw) > MAX_EVENT_BYTES:
        # A line's own line break does not count; any other byte does.
        ending = 2 if raw.endswith(b"\r\n") else 1 if raw.endswith(b"\n") else 0
        if len(raw) - ending > MAX_EVENT_BYTES:
            return f"event is longer than {MAX_EVENT_BYTES} bytes"
    if raw.startswith(BOM):
        return "starts with a UTF-8 byte order mark (U+FEFF); send the JSON without it"
    return None


def _not_utf8(raw: bytes) -> str:
    """Where the bytes stop being UTF-8."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return f"not UTF-8: byte 0x{raw[error.start]:02x} at offset {error.start}"
    return "not UTF-8"


def _check_object(raw: bytes, message: m.Message, encoded: bytes) -> str | None:
    """What the schema cannot see: nulls, duplicate keys, `at` beyond a real instant."""
    if len(encoded) > MAX_PUBLISHED_BYTES:
        return (
            f"the event is {len(encoded)} bytes as ctilink publishes it; at most "
            f"{MAX_PUBLISHED_BYTES} fit in one NATS message with its envelope"
        )
    # A cheap look at the bytes first; the costly part runs only when it may find
    # something: most events have no null, no repeated key, no default sent.
    if not _nothing_hidden(raw, encoded):
        # The schema admits the object, so its nesting is shallow: no deep recursion.
        for key, value in _untyped.decode(raw).items():
            if value is None:
                return f"field `{key}`: null is not a value; leave the field out for its default"
        repeated = repeated_key_problem(raw)
        if repeated is not None:
            return repeated
    entries = getattr(message, "entries", None)
    if entries is not None:
        problem = _check_entries(entries)
        if problem is not None:
            return problem
    if message.at is not None:
        return _check_at(raw, message)
    return None


MAX_ENTRY_CHARS = 256


def _check_entries(entries: tuple[m.Entry | m.PersonalEntry, ...]) -> str | None:
    """I1 (v1.1): a directory entry's name and number are 1 to 256 characters."""
    for index, entry in enumerate(entries):
        for part in ("name", "number"):
            text = getattr(entry, part)
            if not text:
                return f"field `entries[{index}].{part}`: Expected `str` of length >= 1"
            if len(text) > MAX_ENTRY_CHARS:
                return (
                    f"field `entries[{index}].{part}`: Expected `str` of length "
                    f"<= {MAX_ENTRY_CHARS}"
                )
    return None


def _nothing_hidden(raw: bytes, encoded: bytes) -> bool:
    """True when `raw` surely has no repeated key and no null (False: look closer)."""
    # Re-encoded, the event has a quoted string for every key and string value
    # the bytes have, less any key repeated (msgspec keeps the last silently),
    # any key sent as null, and any field sent with its default value. Quotes
    # inside strings are escaped alike on both sides unless the bytes spell some
    # as \u0022.
    return b"\\u" not in raw and raw.count(b'"') == encoded.count(b'"')


def repeated_key_problem(raw: bytes) -> str | None:
    """`given twice` for the first repeated key of JSON that parses, else None."""
    try:
        duplicate = _duplicate_key(raw)
    except (ValueError, RecursionError):  # not JSON at all: msgspec's reason stands
        return None
    return None if duplicate is None else f"field `{duplicate}`: given twice in one object"


def _duplicate_key(raw: bytes) -> str | None:
    """The first key given twice in one object of `raw`, if any."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [key for key, _ in items]
        if len(set(keys)) != len(keys) and not found:
            found.append(next(key for key in keys if keys.count(key) > 1))
        return dict(items)

    json.loads(raw, object_pairs_hook=pairs)
    return found[0] if found else None


class _AtText(msgspec.Struct):
    """An event's `at` as it was written (its other fields are skipped)."""

    at: str | None = None


_at_text = msgspec.json.Decoder(_AtText).decode


def _check_at(raw: bytes, message: m.Message) -> str | None:
    """I1: `at` is a real instant between years 1 and 9999 in UTC, kept exactly."""
    assert message.at is not None
    try:
        message.at.astimezone(UTC)
    except OverflowError:
        text = _at_text(raw).at
        return f"field `at`: {text!r} is not an instant between years 1 and 9999 in UTC"
    # The text as sent, escapes resolved: msgspec would round a finer fraction, and
    # two different `at`s would then be one (I3).
    text = _at_text(raw).at or ""
    fraction = _FRACTION.search(text)
    if fraction is not None and len(fraction.group(1)) > 6:
        return f"field `at`: {text!r} is more precise than a microsecond"
    return None
