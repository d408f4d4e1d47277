"""Reading CTILINK_OUT as a reader may: batched direct gets, from any sequence, no consumer.

A reader gets no JetStream consumer (a push consumer delivers to whatever
subject it names: into `ctilink.in.*`, say, and the service would take
CTILINK_OUT's messages for inbound events). Batched direct get
(`$JS.API.DIRECT.GET.CTILINK_OUT`, nats-server 2.11 or later) replays the stream
from any sequence, filtered by subject, and needs nothing on the server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from nats.aio.client import Client
from nats.js.api import DEFAULT_PREFIX

from ctilink.adapters.nats.streams import OUT_STREAM

BATCH = 500
EVERY_SUBJECT = "ctilink.>"  # all outbound subjects: events, providers, status, rejected


class Stored(msgspec.Struct, frozen=True):
    """One message of CTILINK_OUT as `ctilink out --json` prints it."""

    seq: int
    subject: str
    time: str  # when JetStream stored it (RFC 3339)
    headers: dict[str, str]
    data: Any  # the JSON body, decoded


async def read(
    nc: Client, start: int, subject: str, follow: bool, poll: float = 0.5
) -> AsyncIterator[Stored]:
    """CTILINK_OUT's messages from sequence `start` on `subject`; with `follow`, forever."""
    seq = max(1, start)
    while True:
        batch = await _batch(nc, seq, subject)
        for message in batch:
            yield message
        if batch:
            seq = batch[-1].seq + 1
        elif not follow:
            return
        else:
            await asyncio.sleep(poll)


async def _batch(nc: Client, seq: int, subject: str) -> list[Stored]:
    """One batched direct get: up to BATCH messages from `seq` on `subject`."""
    inbox = nc.new_inbox()
    subscription = await nc.subscribe(inbox)
    request = {"seq": seq, "batch": BATCH, "next_by_subj": subject}
    found: list[Stored] = []
    try:
        await nc.publish(
            f"{DEFAULT_PREFIX}.DIRECT.GET.{OUT_STREAM}", json.dumps(request).encode(), reply=inbox
        )
        while True:
            reply = await subscription.next_msg(timeout=5)
            headers = dict(reply.headers or {})
            if "Status" in headers:  # 204: the end of the batch; 404: nothing from there
                return found
            found.append(
                Stored(
                    int(headers.pop("Nats-Sequence")),
                    headers.pop("Nats-Subject", ""),
                    headers.pop("Nats-Time-Stamp", ""),
                    {k: v for k, v in headers.items() if k not in DIRECT_HEADERS},
                    _json(reply.data),
                )
            )
    finally:
        await subscription.unsubscribe()


DIRECT_HEADERS = {"Nats-Stream", "Nats-Num-Pending", "Nats-Last-Sequence"}


def _json(data: bytes) -> Any:
    """The body as JSON (every CTILINK_OUT message is), else as text."""
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")
