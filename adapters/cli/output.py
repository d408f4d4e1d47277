"""Writing results: exact JSON for programs (tables for people are in render)."""

from __future__ import annotations

import sys
from typing import Any

import msgspec

encode_json = msgspec.json.Encoder().encode


def emit_json(value: Any) -> None:
    """Write one JSON document and a newline to stdout."""
    sys.stdout.buffer.write(encode_json(value) + b"\n")
