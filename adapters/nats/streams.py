"""The JetStream streams ctilink reads from and writes to."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

import msgspec
from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    SubjectTransform,
)
from nats.js.errors import NotFoundError

from ctilink.adapters.errors import UserError

IN_STREAM = "CTILINK_IN"
OUT_STREAM = "CTILINK_OUT"
IN_SUBJECTS = ["ctilink.in.*"]
# The stream files each inbound event under one of PARTITIONS subjects by a hash
# of its network: ctilink.in.<network> is stored as ctilink.in.<partition>.<network>.
# One instance at a time consumes a partition, so a network's events are applied
# in the order they were sent, while the partitions spread over the instances.
PARTITIONS = 12
# A subject that is itself a wildcard (a producer publishing to the literal
# `ctilink.in.*` or `ctilink.in.>`) is stored as sent, untransformed, where no
# partition's consumer reads it; a consumer of those alone would have to filter
# on `ctilink.in.*`, and beside the partitions' filters that stops every ack from
# removing its message from the work queue (tried: nats-server 2.15). They are
# swept instead (adapters/nats/strays.py).
IN_TRANSFORM = SubjectTransform(
    src="ctilink.in.*", dest=f"ctilink.in.{{{{partition({PARTITIONS},1)}}}}.{{{{wildcard(1)}}}}"
)
OUT_SUBJECTS = [
    "ctilink.events.*.*",
    "ctilink.providers.*",
    "ctilink.status.*",
    "ctilink.rejected.*",
]
# Long enough that a publisher restarted after a crash republishes what it had
# sent but not yet recorded inside the window, so JetStream drops the copies.
DUPLICATE_WINDOW_SECONDS = 600.0
REPLICAS_ENV = "CTILINK_STREAM_REPLICAS"
OUT_MAX_AGE_ENV = "CTILINK_OUT_MAX_AGE"
OUT_MAX_BYTES_ENV = "CTILINK_OUT_MAX_BYTES"
# What a new CTILINK_OUT keeps unless told: a month of output (the store keeps
# everything; `ctilink export` replays older history), any size.
DEFAULT_OUT_MAX_AGE = "30d"
DEFAULT_OUT_MAX_BYTES = "0"


class SettingError(UserError):
    """An environment setting has a value ctilink cannot use."""


class Retention(msgspec.Struct, frozen=True):
    """How much a new CTILINK_OUT keeps: seconds and bytes, 0 for no limit."""

    max_age: float = 0.0
    max_bytes: int = 0


DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhdw]?)")
SIZE = re.compile(r"([0-9]+)([KMGT]i?B|B)?", re.IGNORECASE)
SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
BYTES = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
BYTES.update({"KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40})


def duration(text: str, name: str) -> float:
    """Seconds from `30d`, `12h`, `45m`, `90s` or `90` (0: no limit); SettingError if not."""
    found = DURATION.fullmatch(text.strip())
    if found is None:
        raise SettingError(f"{name}={text!r}: a duration such as 30d, 12h, 45m or 0 is needed")
    return float(found[1]) * SECONDS[found[2]]


def size(text: str, name: str) -> int:
    """Bytes from `20GB`, `512MiB` or `1000000` (0: no limit); SettingError if not."""
    found = SIZE.fullmatch(text.strip())
    if found is None:
        raise SettingError(f"{name}={text!r}: a size such as 20GB, 512MiB or 0 is needed")
    return int(found[1]) * BYTES[(found[2] or "B").upper()]


def out_retention(max_age: str | None = None, max_bytes: str | None = None) -> Retention:
    """A new CTILINK_OUT's limits: given, else from the environment, else the defaults."""
    age, age_name = _setting(max_age, "--out-max-age", OUT_MAX_AGE_ENV, DEFAULT_OUT_MAX_AGE)
    most, most_name = _setting(
        max_bytes, "--out-max-bytes", OUT_MAX_BYTES_ENV, DEFAULT_OUT_MAX_BYTES
    )
    return Retention(duration(age, age_name), size(most, most_name))


def _setting(given: str | None, flag: str, env: str, default: str) -> tuple[str, str]:
    """A setting's text and the name it came by: the flag, else the environment, else default."""
    if given is not None:
        return given, flag
    if os.environ.get(env, "").strip():
        return os.environ[env], f"${env}"
    return default, flag


def replicas() -> int:
    """How many copies a NATS cluster keeps of each stream: $CTILINK_STREAM_REPLICAS, else 1."""
    text = os.environ.get(REPLICAS_ENV, "1")
    if not text.isdigit() or not 1 <= int(text) <= 5:
        raise SettingError(f"{REPLICAS_ENV}={text!r}: a number of replicas from 1 to 5 is needed")
    return int(text)


def partition_subject(partition: int) -> str:
    """The stored subjects of one inbound partition."""
    return f"ctilink.in.{partition}.*"


def network_of(subject: str) -> str:
    """The network an inbound subject names: its last token, stored or as sent."""
    return subject.rsplit(".", 1)[-1]


def stream_configs(copies: int = 1, retention: Retention | None = None) -> list[StreamConfig]:
    """Both streams as ctilink makes them when they are missing, file-backed."""
    kept = retention or out_retention()
    common = {
        "storage": StorageType.FILE,
        "num_replicas": copies,
        "duplicate_window": DUPLICATE_WINDOW_SECONDS,
        "discard": DiscardPolicy.OLD,
    }
    return [
        StreamConfig(
            name=IN_STREAM,
            subjects=IN_SUBJECTS,
            subject_transform=IN_TRANSFORM,
            retention=RetentionPolicy.WORK_QUEUE,
            **common,
        ),
        StreamConfig(
            name=OUT_STREAM,
            subjects=OUT_SUBJECTS,
            retention=RetentionPolicy.LIMITS,
            # Readers get stored messages by direct get: no consumer of theirs needed.
            allow_direct=True,
            max_age=kept.max_age or None,
            max_bytes=kept.max_bytes or None,
            **common,
        ),
    ]


async def ensure_streams(
    js: JetStreamContext, copies: int | None = None, retention: Retention | None = None
) -> str:
    """Create whichever stream is missing; leave existing ones as the operator set them.

    Returns CTILINK_IN's epoch. Limits, replicas and placement of an existing
    stream are never changed; one whose subjects or retention ctilink cannot work
    with is refused (SettingError), never rewritten.
    """
    for config in stream_configs(copies or replicas(), retention):
        try:
            found = (await js.stream_info(config.name)).config
        except NotFoundError:
            await js.add_stream(config)
            continue
        problem = incompatibility(found, config)
        if problem is not None:
            raise SettingError(
                f"stream {config.name} exists but {problem}: change it back, or delete it "
                "(and what it holds) so that ctilink makes it again"
            )
    return epoch((await js.stream_info(IN_STREAM)).created)


def incompatibility(found: StreamConfig, wanted: StreamConfig) -> str | None:
    """What makes an existing stream unusable by ctilink, if anything."""
    if sorted(found.subjects or []) != sorted(wanted.subjects or []):
        return f"takes subjects {found.subjects}, not {wanted.subjects}"
    if found.retention != wanted.retention:
        return f"has retention {found.retention}, not {wanted.retention}"
    if wanted.subject_transform is not None and (
        found.subject_transform is None
        or found.subject_transform.dest != wanted.subject_transform.dest
    ):
        return "does not file inbound events by partition (its subject transform differs)"
    return None


def epoch(created: datetime | None) -> str:
    """When a stream was created, as a token: a stream made afresh starts a new epoch."""
    # Stream sequences start again at 1 in a new stream (deleted and made again,
    # its data folder moved, another cluster): the positions the store keeps of
    # the old one must not make the new one's messages look decided before.
    return "" if created is None else created.astimezone(UTC).strftime("@%Y%m%dT%H%M%S.%fZ")


def in_source(part: int | str, stream_epoch: str) -> str:
    """The inbound source name of a CTILINK_IN partition (or of the strays) in this epoch."""
    return f"nats:{IN_STREAM}:{part}{stream_epoch}"


class StreamView(msgspec.Struct, frozen=True):
    """One stream as `ctilink streams` shows it: its limits and what it holds."""

    name: str
    subjects: list[str]
    retention: str
    replicas: int
    max_age_seconds: float  # 0: no limit
    max_bytes: int  # 0: no limit
    messages: int
    bytes: int
    first_seq: int
    last_seq: int


async def describe(js: JetStreamContext) -> list[StreamView]:
    """Both streams as they stand (a missing one is left out)."""
    views = []
    for name in (IN_STREAM, OUT_STREAM):
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            continue
        config, state = info.config, info.state
        views.append(
            StreamView(
                name,
                list(config.subjects or []),
                str(getattr(config.retention, "value", config.retention)),
                int(config.num_replicas or 1),
                float(config.max_age or 0),
                max(0, int(config.max_bytes or 0)),
                int(state.messages),
                int(state.bytes),
                int(state.first_seq),
                int(state.last_seq),
            )
        )
    return views


async def set_out_limits(
    js: JetStreamContext, max_age: float | None, max_bytes: int | None
) -> None:
    """Change CTILINK_OUT's limits on the running system (what is not given stays)."""
    try:
        config = (await js.stream_info(OUT_STREAM)).config
    except NotFoundError:
        raise SettingError(f"there is no stream {OUT_STREAM} yet: start `ctilink serve`") from None
    if max_age is not None:
        config.max_age = max_age or None
    if max_bytes is not None:
        config.max_bytes = max_bytes or -1
    await js.update_stream(config)
