"""The one place ctilink uses nats-py's private API, and only on the version it was written for.

nats-py spends more per `publish()` (checks, a header block built field by field)
than the protocol command takes to write. On nats-py 2.16 ctilink queues many
commands as one write on the client's own outbound buffer, which is flushed,
and kept across a reconnect, exactly like its publishes. On any other version
`ENABLED` is False and callers use the public API instead.
"""

from __future__ import annotations

from nats.aio.client import Client
from nats.aio.client import __version__ as NATS_PY_VERSION

WRITTEN_FOR = "2.16."
ENABLED = NATS_PY_VERSION.startswith(WRITTEN_FOR) and all(
    hasattr(Client, name) for name in ("_send_command", "_flush_pending")
)


async def write_commands(nc: Client, commands: list[bytes]) -> None:
    """Queue protocol commands (PUB, HPUB) as one write and have the flusher send them."""
    nc.stats["out_msgs"] += len(commands)  # as nc.publish() counts them
    await nc._send_command(b"".join(commands))
    await nc._flush_pending()
