"""The service's log lines: plain text (the default) or one JSON object per line.

`--log-format json` (on `serve` and `publish`) writes each line as
`{"time", "level", "message", "logger", ...}` with python-json-logger: `time`
in ISO 8601 (UTC, microseconds), `logger` `ctilink.serve` or
`ctilink.publish`, `partition` where a line is about one. The libraries' own
lines (uvicorn, asyncio, nats) and a command's last error go the same way.
"""

from __future__ import annotations

import io
import logging
import re
import sys

FORMATS = ("plain", "json")
LIBRARIES = ("uvicorn", "uvicorn.error", "uvicorn.access", "asyncio", "nats")
_PARTITION = re.compile(r"^partition (\d+):|^consumer ctilink-p(\d+)-")
# Lines about something away, failing or being waited for are warnings.
_PROBLEM = re.compile(
    r"\b(cannot|failed|failure|error|away|lost|disconnected|waiting|skipped|not swept|"
    r"without draining|timed out|timeout|refused|damaged)\b",
    re.IGNORECASE,
)
_state = {"json": False, "logger": "ctilink.serve"}


def use_format(name: str, role: str = "serve") -> None:
    """Write log lines in this format from now on (`plain` or `json`), as `ctilink.<role>`."""
    _state["logger"] = f"ctilink.{role}"
    if name != "json":
        _state["json"] = False
        return
    from pythonjsonlogger.json import JsonFormatter  # only JSON logs load it

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "{levelname}{message}{name}",
            style="{",
            timestamp="time",
            rename_fields={"levelname": "level", "name": "logger"},
        )
    )
    for name_ in (_state["logger"], *LIBRARIES):
        logger = logging.getLogger(name_)
        logger.handlers[:] = [handler]
        logger.propagate = False
    logging.getLogger(_state["logger"]).setLevel(logging.INFO)
    _state["json"] = True


def json_logs() -> bool:
    """Whether log lines are JSON."""
    return bool(_state["json"])


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


def emit(line: str, level: int | None = None) -> None:
    """One log line, in the chosen format."""
    if not _state["json"]:
        print(f"ctilink serve: {line}", file=sys.stderr, flush=True)
        return
    fields: dict[str, object] = {}
    found = _PARTITION.match(line)
    if found:
        fields["partition"] = int(found[1] or found[2])
    if level is None:
        level = logging.WARNING if _PROBLEM.search(line) else logging.INFO
    logging.getLogger(str(_state["logger"])).log(level, line, extra=fields)


def fatal(line: str) -> None:
    """A command's last word (an error): JSON when the logs are, else `ctilink: …`."""
    if _state["json"]:
        emit(line, logging.ERROR)
    else:
        print(f"ctilink: {line}", file=sys.stderr)
