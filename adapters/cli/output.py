"""Writing results: exact JSON for programs (tables for people are in render)."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from itertools import islice
from typing import Any

import msgspec

encode_json = msgspec.json.Encoder().encode


def emit_json(value: Any) -> None:
    """Write one JSON document and a newline to stdout."""
    sys.stdout.buffer.write(encode_json(value) + b"\n")


def emit_json_array(items: Iterable[Any], page: int = 1000) -> None:
    """Write a JSON array exactly as `emit_json` would, a page of items at a time."""
    out = sys.stdout.buffer
    out.write(b"[")
    source = iter(items)
    separator = b""
    while chunk := list(islice(source, page)):
        out.write(separator + b",".join(encode_json(item) for item in chunk))
        separator = b","
    out.write(b"]\n")
