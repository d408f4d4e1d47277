"""The deployment as documented: the owner migrates, the service runs as the role docs make.

docs/postgresql.md's SQL block is run as written (names made unique), then
`ingest` and `serve` (with infra/nats's accounts and nkeys, the documented
flags) run as the service role, and the reader role reads.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from ctilink.adapters.nats.embedded import EmbeddedNats
from tests.e2e.conftest import ROOT, login, make_key, scenario, serve_process, wait_for
from tests.stores import SERVER, Postgres

USERS = ("service", "producer", "reader")


def documented_grants() -> str:
    """The SQL block of docs/postgresql.md that the docs say this test runs."""
    text = (ROOT / "docs/postgresql.md").read_text()
    found = re.search(r"test_least_privilege\.py[^\n]*-->\s*```sql\n(.*?)```", text, re.S)
    assert found is not None, "docs/postgresql.md has no SQL block for this test"
    return found.group(1)


def ctilink(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI as a process."""
    command = [sys.executable, "-m", "ctilink.adapters.cli", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.fixture
def database(postgres: Postgres):  # type: ignore[no-untyped-def]
    """A database of its own, its roles dropped with it."""
    postgres.new_store()  # skips (or fails under CI) without PostgreSQL
    name = f"ctilink_lp_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    roles: list[str] = []
    yield name, roles
    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        for role in roles:
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


async def test_the_service_runs_as_the_role_the_docs_grant_and_the_reader_only_reads(
    database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    name, roles = database
    tag = uuid.uuid4().hex[:8]
    service_role, reader_role, schema = f"svc_{tag}", f"rdr_{tag}", f"app_{tag}"
    roles += [service_role, reader_role]
    owner = f"{SERVER}/{name}?schema={schema}"
    migrated = ctilink("migrate", "--store", owner)
    assert migrated.returncode == 0, migrated.stderr
    grants = (
        documented_grants()
        .replace("ctilink_service", service_role)
        .replace("ctilink_reader", reader_role)
        .replace("DATABASE ctilink ", f'DATABASE "{name}" ')
        .replace("SCHEMA ctilink ", f"SCHEMA {schema} ")
        .replace("ctilink.ctilink_", f"{schema}.ctilink_")
    )
    with psycopg.connect(f"{SERVER}/{name}", autocommit=True) as admin:
        admin.execute(grants)  # type: ignore[arg-type]
    host = SERVER.split("@", 1)[1]
    as_service = f"postgresql://{service_role}:{quote('change me')}@{host}/{name}?schema={schema}"
    as_reader = f"postgresql://{reader_role}:{quote('change me too')}@{host}/{name}?schema={schema}"

    # The service's role may change rows, and nothing else.
    with psycopg.connect(as_service.split("?")[0]) as connection:
        for statement in (
            f"CREATE TABLE {schema}.x (a int)",
            f"UPDATE {schema}.ctilink_events SET topic = topic",
            f"DELETE FROM {schema}.ctilink_rejections",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                connection.execute(statement)
            connection.rollback()
    lines = tmp_path / "events.jsonl"
    lines.write_bytes(b"\n".join(scenario()[:20]) + b"\n")
    ingested = ctilink("ingest", str(lines), "--store", as_service, "--json")
    assert ingested.returncode == 0, ingested.stderr

    # serve as documented: infra/nats's accounts, the service's nkey, --http.
    for user in USERS:
        monkeypatch.setenv(f"CTILINK_{user.upper()}_NKEY", make_key(tmp_path, user))
    (tmp_path / "accounts.conf").write_text((ROOT / "infra/nats/accounts.conf").read_text())
    (tmp_path / "nats.conf").write_text("include ./accounts.conf\n")
    server = EmbeddedNats(tmp_path / "nats", config=tmp_path / "nats.conf")
    server.start()
    log = tmp_path / "serve.log"
    port = _free_port()
    process = serve_process(
        as_service,
        log,
        *("--nats", server.url, "--nkey", str(tmp_path / "service.nk")),
        *("--http", f"127.0.0.1:{port}"),
    )
    try:
        producer = await login(server.port, tmp_path, "producer", [])
        for line in scenario()[20:]:
            network = json.loads(line)["network"]
            await producer.jetstream().publish(f"ctilink.in.{network}", line)
        await producer.close()
        reader = await login(server.port, tmp_path, "reader", [])

        async def all_decided() -> bool:
            reply = await reader.request("ctilink.api.status", b'{"network":"acme"}', timeout=2)
            return not reply.headers and json.loads(reply.data)["position"] == 27

        await wait_for(all_decided, timeout=60)
        await reader.close()
        ready = urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert json.loads(ready.read())["ready"] is True
    finally:
        process.terminate()
        assert process.wait(30) == 0, log.read_text()
        server.stop()
    said = log.read_text()
    assert "Traceback" not in said and "permission denied" not in said, said

    # The reader reads what the service wrote; writing is refused, in one line.
    status = ctilink("status", "acme", "--store", as_reader, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["position"] == 27
    other = tmp_path / "more.jsonl"
    other.write_bytes(b'{"type":"portal_restarted","id":"more","network":"acme"}\n')
    refused = ctilink("ingest", str(other), "--store", as_reader)
    assert refused.returncode == 2 and len(refused.stderr.splitlines()) == 1, refused.stderr


def _free_port() -> int:
    """A port nobody listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
