"""Asking a running `ctilink serve` over NATS instead of opening the store."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout

from ctilink.adapters.errors import UserError
from ctilink.adapters.nats.wire import NetworksQuery, NetworkSummary, encode
from ctilink.domain.messages import is_name


class RemoteError(UserError):
    """The service answered with an error, or nobody answered."""


async def _connect(url: str, options: dict[str, Any]) -> Any:
    """A short-lived connection, or RemoteError saying why not."""

    async def quiet(_: Exception) -> None:
        pass  # the failure is reported once, below

    try:
        # nats-py keeps retrying a refused first connection; bound it ourselves.
        return await asyncio.wait_for(
            nats.connect(url, allow_reconnect=False, connect_timeout=5, error_cb=quiet, **options),
            timeout=5,
        )
    except TimeoutError:
        raise RemoteError(f"cannot connect to NATS at {url}: no answer in 5 s") from None
    except Exception as error:
        reason = error or type(error).__name__
        raise RemoteError(f"cannot connect to NATS at {url}: {reason}") from None


async def _request(nc: Any, url: str, subject: str, body: bytes) -> bytes:
    """One request's answer, or RemoteError with the service's reason."""
    try:
        reply = await nc.request(subject, body, timeout=10)
    except NoRespondersError:
        raise RemoteError(f"no ctilink service answers {subject} at {url}") from None
    except (NatsTimeout, TimeoutError):
        raise RemoteError(f"ctilink service at {url} did not answer in 10 s") from None
    headers = reply.headers or {}
    if "Nats-Service-Error-Code" in headers:
        raise RemoteError(headers.get("Nats-Service-Error", "error"))
    return reply.data


@contextlib.asynccontextmanager
async def connected(url: str, options: dict[str, Any]) -> AsyncIterator[Any]:
    """A short-lived connection for a command (RemoteError if there is none), then closed."""
    nc = await _connect(url, options)
    try:
        yield nc
    finally:
        with contextlib.suppress(Exception):
            await nc.close()


async def _ask(url: str, subject: str, body: bytes, options: dict[str, Any]) -> bytes:
    """One request on a short-lived connection."""
    nc = await _connect(url, options)
    try:
        return await _request(nc, url, subject, body)
    finally:
        await nc.close()


def ask(url: str, endpoint: str, request: Any, options: dict[str, Any], answer: type) -> Any:
    """Call ctilink.api.<endpoint>; returns the raw JSON and the decoded answer."""
    raw = asyncio.run(_ask(url, f"ctilink.api.{endpoint}", encode(request), options))
    return raw, msgspec.json.decode(raw, type=answer)


def list_networks(url: str, query: NetworksQuery, options: dict[str, Any]) -> list[NetworkSummary]:
    """Every network `ctilink.api.networks` lists for the query, a page at a time."""
    return asyncio.run(_pages(url, query, options))


async def _pages(url: str, query: NetworksQuery, options: dict[str, Any]) -> list[NetworkSummary]:
    """Ask for the next page after the last name until a page comes back empty."""
    decode = msgspec.json.Decoder(list[NetworkSummary]).decode
    listing: list[NetworkSummary] = []
    nc = await _connect(url, options)
    try:
        while True:
            # A page may be shorter than asked (cut to fit a NATS message): only
            # an empty one says the listing is over.
            page = decode(await _request(nc, url, "ctilink.api.networks", encode(query)))
            if not page:
                return listing
            last = page[-1].network
            if (query.after is not None and last <= query.after) or not is_name(last):
                # A service that does not move on would be asked forever.
                raise RemoteError(
                    f"the service's listing does not go on past {query.after!r} "
                    f"(it answered {last!r}): its network index may be damaged (ctilink reindex)"
                )
            listing += page
            query = msgspec.structs.replace(query, after=last)
    finally:
        await nc.close()
