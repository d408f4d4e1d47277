"""Asking a running `ctilink serve` over NATS instead of opening the store."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from ctilink.adapters.errors import UserError
from ctilink.adapters.nats.wire import encode


class RemoteError(UserError):
    """The service answered with an error, or nobody answered."""


async def _ask(url: str, subject: str, body: bytes, options: dict[str, Any]) -> bytes:
    """One request on a short-lived connection."""

    async def quiet(_: Exception) -> None:
        pass  # the failure is reported once, below

    try:
        # nats-py keeps retrying a refused first connection; bound it ourselves.
        nc = await asyncio.wait_for(
            nats.connect(url, allow_reconnect=False, connect_timeout=5, error_cb=quiet, **options),
            timeout=5,
        )
    except TimeoutError:
        raise RemoteError(f"cannot connect to NATS at {url}: no answer in 5 s") from None
    except Exception as error:
        reason = error or type(error).__name__
        raise RemoteError(f"cannot connect to NATS at {url}: {reason}") from None
    try:
        reply = await nc.request(subject, body, timeout=10)
    except NoRespondersError:
        raise RemoteError(f"no ctilink service answers {subject} at {url}") from None
    except (NatsTimeout, TimeoutError):
        raise RemoteError(f"ctilink service at {url} did not answer in 10 s") from None
    finally:
        await nc.close()
    headers = reply.headers or {}
    if "Nats-Service-Error-Code" in headers:
        raise RemoteError(headers.get("Nats-Service-Error", "error"))
    return reply.data


def ask(url: str, endpoint: str, request: Any, options: dict[str, Any], answer: type) -> Any:
    """Call ctilink.api.<endpoint>; returns the raw JSON and the decoded answer."""
    raw = asyncio.run(_ask(url, f"ctilink.api.{endpoint}", encode(request), options))
    return raw, msgspec.json.decode(raw, type=answer)
