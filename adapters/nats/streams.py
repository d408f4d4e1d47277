"""The JetStream streams ctilink reads from and writes to."""

from __future__ import annotations

import os
from datetime import UTC, datetime

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


class SettingError(UserError):
    """An environment setting has a value ctilink cannot use."""


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


def stream_configs(copies: int = 1) -> list[StreamConfig]:
    """Both streams, file-backed."""
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
            **common,
        ),
    ]


async def ensure_streams(js: JetStreamContext, copies: int | None = None) -> str:
    """Create the streams, or bring existing ones to this configuration; CTILINK_IN's epoch."""
    for config in stream_configs(copies or replicas()):
        try:
            await js.stream_info(config.name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
    return epoch((await js.stream_info(IN_STREAM)).created)


def epoch(created: datetime | None) -> str:
    """When a stream was created, as a token: a stream made afresh starts a new epoch."""
    # Stream sequences start again at 1 in a new stream (deleted and made again,
    # its data folder moved, another cluster): the positions the store keeps of
    # the old one must not make the new one's messages look decided before.
    return "" if created is None else created.astimezone(UTC).strftime("@%Y%m%dT%H%M%S.%fZ")


def in_source(part: int | str, stream_epoch: str) -> str:
    """The inbound source name of a CTILINK_IN partition (or of the strays) in this epoch."""
    return f"nats:{IN_STREAM}:{part}{stream_epoch}"
