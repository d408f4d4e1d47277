"""The services' log lines (`serve`, `publish`, `web`): plain text (the default) or JSON.

Plain lines read `2026-12-07T08:48:09.974+00:00 INFO ctilink serve: ready: …`:
the time in UTC (ISO 8601, milliseconds), the level, who says it. `--log-format
json` (on `serve` and `publish`) writes each line as `{"time", "level",
"message", "logger", ...}` with python-json-logger: `time` in ISO 8601 (UTC,
microseconds), `logger` `ctilink.serve` or `ctilink.publish`, `partition` where
a line is about one. The libraries' own lines (uvicorn, asyncio, nats) go the
same way. `--log-level` drops the lines below it. A command's last error is
`ctilink: …` in plain mode (as every command's), a JSON line in JSON mode.
"""

from __future__ import annotations

import io
import logging
import re
import sys
from datetime import UTC, datetime

FORMATS = ("plain", "json")
LEVELS = ("debug", "info", "warning", "error")
LIBRARIES = ("uvicorn", "uvicorn.error", "uvicorn.access", "asyncio", "nats")
_PARTITION = re.compile(r"^partition (\d+):|^consumer ctilink-p(\d+)-")
# Lines about something away, failing or being waited for are warnings.
_PROBLEM = re.compile(
    r"\b(cannot|failed|failure|error|away|lost|disconnected|waiting|skipped|not swept|"
    r"without draining|timed out|timeout|refused|damaged)\b",
    re.IGNORECASE,
)
_state: dict[str, object] = {"json": False, "logger": "ctilink.serve", "ready": False}


class Said(str):
    """A log line whose level its author chose (the words alone would suggest another)."""

    level: int


def said(line: str, level: int) -> Said:
    """`line`, to be logged at `level` whatever its words."""
    text = Said(line)
    text.level = level
    return text


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever sys.stderr is when a line is written."""

    @property  # type: ignore[override]
    def stream(self) -> io.TextIOBase:
        """The current stderr."""
        return sys.stderr  # type: ignore[return-value]

    @stream.setter
    def stream(self, value: object) -> None:
        """Ignored: the stream is always the current stderr."""


class PlainFormatter(logging.Formatter):
    """`TIME LEVEL WHO: message`, the time in UTC with milliseconds."""

    def format(self, record: logging.LogRecord) -> str:
        """One plain line (a traceback, when there is one, follows it)."""
        when = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        who = record.name.replace(".", " ") if record.name.startswith("ctilink.") else record.name
        text = f"{when} {record.levelname} {who}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text


def use_format(name: str, role: str = "serve", level: str = "info") -> None:
    """Write log lines in this format (`plain` or `json`) from now on, as `ctilink.<role>`,
    leaving out those below `level`."""
    logger_name = f"ctilink.{role}"
    handler = _Stderr()
    if name == "json":
        from pythonjsonlogger.json import JsonFormatter  # only JSON logs load it

        handler.setFormatter(
            JsonFormatter(
                "{levelname}{message}{name}",
                style="{",
                timestamp="time",
                rename_fields={"levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(PlainFormatter())
    threshold = logging.getLevelNamesMapping()[level.upper()]
    for name_ in (logger_name, *LIBRARIES):
        logger = logging.getLogger(name_)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(threshold)
    _state.update(json=name == "json", logger=logger_name, ready=True)


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


def level_of(line: str) -> int:
    """The level a line is logged at: its author's choice, else by its words."""
    if isinstance(line, Said):
        return line.level
    return logging.WARNING if _PROBLEM.search(line) else logging.INFO


def emit(line: str, level: int | None = None) -> None:
    """One log line, in the chosen format (plain at INFO and above, if none was chosen)."""
    if not _state["ready"]:
        use_format("plain")
    fields: dict[str, object] = {}
    found = _PARTITION.match(line)
    if found:
        fields["partition"] = int(found[1] or found[2])
    logging.getLogger(str(_state["logger"])).log(
        level_of(line) if level is None else level, str(line), extra=fields
    )


def announce(line: str) -> None:
    """A plain log line on stdout whatever the level: what scripts read (an address)."""
    record = logging.LogRecord(str(_state["logger"]), logging.INFO, "", 0, line, None, None)
    print(PlainFormatter().format(record), flush=True)


def fatal(line: str) -> None:
    """A command's last word (an error): JSON when the logs are, else `ctilink: …`."""
    if _state["json"]:
        emit(line, logging.ERROR)
    else:
        print(f"ctilink: {line}", file=sys.stderr)
