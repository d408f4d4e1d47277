"""infra/nats/tls.conf: mutual TLS between nats-server and ctilink, with certificates made here."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import nats
import pytest

from ctilink.adapters.nats.embedded import EmbeddedNats
from tests.e2e.conftest import ROOT, serve_process, wait_for, wait_ready

INSTALL = b'{"type":"portal_installed","id":"i1","network":"acme","platform":"windows"}'


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def certificates(folder: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, signed by the CA."""
    openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=ctilink-test-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        cwd=folder,
    )
    for name, extension in (
        ("server", "subjectAltName=IP:127.0.0.1"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            f"/CN={name}",
            "-keyout",
            f"{name}.key",
            "-out",
            f"{name}.csr",
            cwd=folder,
        )
        (folder / f"{name}.ext").write_text(extension + "\n")
        openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            "-out",
            f"{name}.pem",
            cwd=folder,
        )
    return folder


@pytest.fixture
def tls_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """A nats-server with JetStream and infra/nats/tls.conf."""
    certs = certificates(tmp_path)
    monkeypatch.setenv("CTILINK_NATS_TLS_CERT", str(certs / "server.pem"))
    monkeypatch.setenv("CTILINK_NATS_TLS_KEY", str(certs / "server.key"))
    monkeypatch.setenv("CTILINK_NATS_TLS_CA", str(certs / "ca.pem"))
    (tmp_path / "tls.conf").write_text((ROOT / "infra/nats/tls.conf").read_text())
    config = tmp_path / "server.conf"
    config.write_text("include ./tls.conf\n")
    server = EmbeddedNats(tmp_path / "nats", config=config)
    server.start()
    yield server, certs
    server.stop()


async def test_serve_and_clients_talk_over_mutual_tls_and_one_without_a_certificate_is_refused(
    tls_server, tmp_path
):
    server, certs = tls_server
    url = f"tls://127.0.0.1:{server.port}"
    tls_args = [
        "--tls-ca",
        str(certs / "ca.pem"),
        "--tls-cert",
        str(certs / "client.pem"),
        "--tls-key",
        str(certs / "client.key"),
    ]
    log = tmp_path / "serve.log"
    process = serve_process(tmp_path / "c.db", log, "--nats", url, *tls_args, ready=False)
    try:
        wait_ready(process, log)
        import ssl

        context = ssl.create_default_context(cafile=str(certs / "ca.pem"))
        context.load_cert_chain(str(certs / "client.pem"), str(certs / "client.key"))
        nc = await nats.connect(url, tls=context)
        await nc.jetstream().publish("ctilink.in.acme", INSTALL)

        async def installed() -> bool:
            reply = await nc.request("ctilink.api.status", b'{"network":"acme"}', timeout=2)
            return b'"position":1' in reply.data

        await wait_for(installed)
        await nc.close()
        asked = subprocess.run(
            [
                sys.executable,
                "-m",
                "ctilink.adapters.cli",
                "status",
                "acme",
                "--json",
                "--nats",
                url,
                *tls_args,
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
        without = subprocess.run(
            [
                sys.executable,
                "-m",
                "ctilink.adapters.cli",
                "status",
                "acme",
                "--nats",
                url,
                "--tls-ca",
                str(certs / "ca.pem"),
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=60,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)

    assert json.loads(asked.stdout)["position"] == 1, asked.stderr
    assert without.returncode == 2 and "Traceback" not in without.stderr
    assert code == 0
