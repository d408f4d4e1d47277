"""The service's log lines: plain text (the default) or one JSON object per line.

`--log-format json` (on `serve` and `publish`) writes each line as
`{"time", "level", "message", "logger", ...}` with python-json-logger, with
fields such as `partition` where a line is about one.
"""

from __future__ import annotations

import io
import logging
import re
import sys

FORMATS = ("plain", "json")
LOGGER = "ctilink.serve"
_PARTITION = re.compile(r"^partition (\d+):")
_PROBLEM = re.compile(r"\b(cannot|failed|error|away|lost)\b", re.IGNORECASE)
_state = {"json": False}


def use_format(name: str) -> None:
    """Write log lines in this format from now on (`plain` or `json`)."""
    if name != "json":
        _state["json"] = False
        return
    from pythonjsonlogger.json import JsonFormatter  # only JSON logs load it

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{asctime}{levelname}{message}{name}",
            style="{",
            datefmt="%Y-%m-%dT%H:%M:%S%z",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    logger = logging.getLogger(LOGGER)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    _state["json"] = True


class LogStream(io.TextIOBase):
    """A text stream whose lines become log lines (for what a store prints when it opens)."""

    def __init__(self) -> None:
        self._partial = ""

    def write(self, text: str) -> int:
        """Emit every complete line written."""
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            if line.strip():
                emit(line.removeprefix("ctilink: "))
        return len(text)

    def isatty(self) -> bool:
        """Never a terminal: no progress bars in a log."""
        return False


def emit(line: str) -> None:
    """One log line, in the chosen format."""
    if not _state["json"]:
        print(f"ctilink serve: {line}", file=sys.stderr, flush=True)
        return
    fields: dict[str, object] = {}
    found = _PARTITION.match(line)
    if found:
        fields["partition"] = int(found[1])
    level = logging.WARNING if _PROBLEM.search(line) else logging.INFO
    logging.getLogger(LOGGER).log(level, line, extra=fields)
