"""JetStream API requests that nats-py 2.16 does not wrap: pinned pull consumers (ADR-42).

A consumer whose `priority_policy` is `pinned_client` delivers to one client of
its priority group at a time; when that client stops pulling for
`priority_timeout`, the server pins another. nats-py has no fields for this in
its ConsumerConfig, so the consumer is created, and its pin given up, by the
JetStream API's own JSON requests (the wire API, not a private one of nats-py).
"""

from __future__ import annotations

import json
from typing import Any

from nats.aio.client import Client
from nats.js.api import DEFAULT_PREFIX

from ctilink.adapters.errors import UserError

# Pinned clients need 2.11; the consumer reset that puts deliveries back in order
# after a handover needs 2.14 (ADR-60). The wheel brings 2.15.
MINIMUM_SERVER = (2, 14)


class ApiError(RuntimeError):
    """The JetStream API answered with an error."""

    def __init__(self, code: int, description: str) -> None:
        super().__init__(f"{code} {description}")
        self.code = code


def check_server(nc: Client) -> None:
    """UserError unless the server is new enough for pinned consumers and resets."""
    version = nc.connected_server_version
    if (version.major, version.minor) < MINIMUM_SERVER:
        need = ".".join(map(str, MINIMUM_SERVER))
        raise UserError(
            f"nats-server {version} is too old: ctilink needs {need} or later "
            "(pinned pull consumers and consumer resets)"
        )


async def request(nc: Client, subject: str, body: dict[str, Any], timeout: float = 5.0) -> Any:
    """One JetStream API request; its answer as JSON, or ApiError."""
    reply = await nc.request(f"{DEFAULT_PREFIX}.{subject}", json.dumps(body).encode(), timeout)
    answer = json.loads(reply.data or b"{}")
    error = answer.get("error") if isinstance(answer, dict) else None
    if error:
        raise ApiError(int(error.get("code", 0)), str(error.get("description", "")))
    return answer


async def create_pinned_consumer(
    nc: Client,
    stream: str,
    name: str,
    *,
    filter_subject: str,
    group: str,
    priority_timeout: float,
    ack_wait: float,
    max_ack_pending: int,
) -> dict[str, Any]:
    """Create a durable pull consumer whose group delivers to one pinned client; its config."""
    config = {
        "durable_name": name,
        "filter_subject": filter_subject,
        "ack_policy": "explicit",
        "deliver_policy": "all",
        "ack_wait": int(ack_wait * 1e9),
        "max_ack_pending": max_ack_pending,
        "priority_groups": [group],
        "priority_policy": "pinned_client",
        "priority_timeout": int(priority_timeout * 1e9),
    }
    body = {"stream_name": stream, "config": config, "action": "create"}
    answer = await request(nc, f"CONSUMER.CREATE.{stream}.{name}", body)
    return dict(answer.get("config", {}))


async def consumer_info(nc: Client, stream: str, name: str) -> dict[str, Any] | None:
    """A consumer's info as JSON (priority group state included), or None if it is missing."""
    try:
        return dict(await request(nc, f"CONSUMER.INFO.{stream}.{name}", {}))
    except ApiError as error:
        if error.code == 404:
            return None
        raise


async def unpin(nc: Client, stream: str, name: str, group: str) -> None:
    """Give up the group's pin, so that the server pins the next client that pulls."""
    await request(nc, f"CONSUMER.UNPIN.{stream}.{name}", {"group": group})


def is_pinned_consumer(config: dict[str, Any], group: str) -> bool:
    """Whether a consumer's config delivers `group` to one pinned client."""
    return config.get("priority_policy") == "pinned_client" and group in (
        config.get("priority_groups") or []
    )
