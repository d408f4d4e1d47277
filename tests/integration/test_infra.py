"""The deployment files under infra/: what the real nats-server accepts, and what
compose and systemd are told (read as text: no YAML parser in the environment)."""

from __future__ import annotations

import configparser
import os
import posixpath
import re
import subprocess
from pathlib import Path

import nkeys
import pytest

from ctilink.adapters.nats.embedded import binary

INFRA = Path(__file__).resolve().parents[2] / "infra"
COMPOSE_DIR = INFRA / "compose"
COMPOSE = (COMPOSE_DIR / "compose.yaml").read_text()
ACCOUNTS = (INFRA / "nats" / "accounts.conf").read_text()
# tls.conf reads certificate files: tests/e2e/test_tls.py runs it with some it makes.
NATS_CONFIGS = sorted(
    path
    for path in [*INFRA.glob("nats/*.conf"), *COMPOSE_DIR.glob("nats/*.conf")]
    if path.name != "tls.conf"
)
NODES = ["nats1", "nats2", "nats3"]
INSTANCES = ["ctilink1", "ctilink2", "ctilink3"]
# Every $VARIABLE the NATS configurations read (the users' public keys).
KEY_VARS = sorted(set(re.findall(r"\$(CTILINK_\w+)", ACCOUNTS)))


def nats_check(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`nats-server -t -c config`: parse and validate, start nothing."""
    return subprocess.run(
        [binary(), "-t", "-c", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )


def clean_env() -> dict[str, str]:
    """The environment without any CTILINK_* variable of the caller."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CTILINK_")}


def blocks(text: str, indent: int) -> dict[str, str]:
    """The `key:` entries at exactly this indentation, each with the lines under it."""
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        depth = len(line) - len(stripped)
        if not stripped or stripped.startswith("#"):
            if current is not None:
                current.append(line)
            continue
        if depth == indent and (m := re.match(r"([\w.-]+):", stripped)):
            current = found.setdefault(m.group(1), [line])
        elif depth <= indent:
            current = None
        elif current is not None:
            current.append(line)
    return {key: "\n".join(lines) for key, lines in found.items()}


TOP = blocks(COMPOSE, 0)
SERVICES = blocks(TOP["services"], 2)
X_NATS = TOP["x-nats"]
X_CTILINK = TOP["x-ctilink"]


def mounts(service: str) -> dict[str, str]:
    """A service's bind mounts: container path -> host path, relative to compose/."""
    pairs = re.findall(r"^\s+- (\.{1,2}/[^:\s]+):([^:\s]+)(?::ro)?$", SERVICES[service], re.M)
    return {target: source for source, target in pairs}


def env_value(block: str, name: str) -> str:
    """The value of NAME in a compose `environment:` mapping inside the block."""
    m = re.search(rf"^\s+{name}: *(.+)$", block, re.M)
    assert m, f"{name} is not set"
    return m.group(1).strip().strip('"')


def public_key() -> str:
    """A valid user public key, as `ctilink nkey` prints one."""
    return nkeys.from_seed(
        nkeys.encode_seed(os.urandom(32), nkeys.PREFIX_BYTE_USER)
    ).public_key.decode()


@pytest.mark.parametrize("config", NATS_CONFIGS, ids=lambda p: str(p.relative_to(INFRA)))
def test_every_nats_config_is_accepted_by_nats_server(config: Path) -> None:
    env = clean_env() | {name: public_key() for name in KEY_VARS}
    result = nats_check(config, env)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "is valid" in result.stderr + result.stdout


def test_nats_configs_refuse_to_start_without_a_key_or_with_an_empty_one() -> None:
    assert KEY_VARS == ["CTILINK_PRODUCER_NKEY", "CTILINK_READER_NKEY", "CTILINK_SERVICE_NKEY"]
    keys = {name: public_key() for name in KEY_VARS if name != "CTILINK_READER_NKEY"}

    missing = nats_check(COMPOSE_DIR / "nats" / "nats2.conf", clean_env() | keys)
    empty = nats_check(
        COMPOSE_DIR / "nats" / "nats2.conf", clean_env() | keys | {"CTILINK_READER_NKEY": ""}
    )

    assert missing.returncode != 0 and "CTILINK_READER_NKEY" in missing.stderr
    assert empty.returncode != 0


def test_no_password_is_written_in_any_nats_configuration() -> None:
    for config in [*NATS_CONFIGS, INFRA / "nats" / "accounts.conf"]:
        assert "password" not in re.sub(r"#.*", "", config.read_text()), config


@pytest.mark.parametrize("node", NODES)
def test_each_compose_nats_node_is_a_named_jetstream_member_of_one_cluster(node: str) -> None:
    text = (COMPOSE_DIR / "nats" / f"{node}.conf").read_text()
    assert re.search(rf"^server_name: {node}$", text, re.M)
    assert re.search(r"^\s+name: ctilink$", text, re.M)  # the cluster's name
    routes = re.findall(r"nats-route://(\w+):6222", text)
    assert sorted(routes) == NODES
    assert re.search(r"^\s+sync_interval: always\b", text, re.M)
    store_dir = re.search(r"^\s+store_dir: (\S+)", text, re.M)
    assert store_dir and store_dir.group(1).startswith("/data/")
    assert f"{node}-data:/data" in SERVICES[node]  # on the node's named volume
    assert f"\n  {node}-data:" in TOP["volumes"]


def test_compose_runs_three_nats_nodes_postgres_and_three_ctilink_instances() -> None:
    assert sorted(SERVICES) == sorted([*NODES, "postgres", *INSTANCES])
    for service in NODES:
        assert "<<: *nats" in SERVICES[service]
    for service in INSTANCES:
        assert "<<: *ctilink" in SERVICES[service]
    assert "&nats" in X_NATS.splitlines()[0]
    assert "&ctilink" in X_CTILINK.splitlines()[0]


def test_every_compose_service_is_named_in_the_readme() -> None:
    readme = (INFRA / "README.md").read_text()
    section = readme.split("## Scale-out deployment", 1)[1]
    for service in SERVICES:
        assert f"`{service}`" in section, service


@pytest.mark.parametrize("node", NODES)
def test_each_nats_node_reads_its_own_config_and_the_shared_accounts(node: str) -> None:
    command = re.search(r'command: \["-c", "([^"]+)"\]', SERVICES[node])
    assert command, "no -c CONFIG"
    config = command.group(1)
    mounted = mounts(node)
    assert mounted[config] == f"./nats/{node}.conf"
    include = re.search(
        r"^include (\S+)$", (COMPOSE_DIR / "nats" / f"{node}.conf").read_text(), re.M
    )
    assert include, "accounts.conf is not included"
    # The include resolves, inside the container, to the mounted accounts.conf.
    accounts = posixpath.normpath(posixpath.join(posixpath.dirname(config), include.group(1)))
    assert mounted[accounts] == "../nats/accounts.conf"
    for source in mounted.values():
        assert (COMPOSE_DIR / source).is_file(), source


def test_nats_nodes_get_every_key_their_accounts_need() -> None:
    for name in KEY_VARS:
        assert env_value(X_NATS, name) == f"${{{name}:?set {name}}}"


def test_ctilink_instances_use_postgresql_and_all_three_nats_nodes_with_three_replicas() -> None:
    store = env_value(X_CTILINK, "CTILINK_STORE")
    assert re.fullmatch(
        r"postgresql://ctilink:\$\{CTILINK_PG_PASSWORD:\?[^}]*\}@postgres:5432/ctilink", store
    )
    assert env_value(X_CTILINK, "CTILINK_NATS_URL").split(",") == [
        f"nats://{node}:4222" for node in NODES
    ]
    assert env_value(X_CTILINK, "CTILINK_STREAM_REPLICAS") == "3"
    pg = SERVICES["postgres"]
    assert "image: postgres:15" in pg
    assert "pg_isready" in pg
    assert env_value(pg, "POSTGRES_PASSWORD").startswith("${CTILINK_PG_PASSWORD:?")
    assert re.search(r"postgres:\n\s+condition: service_healthy", X_CTILINK)
    for node in NODES:
        assert re.search(rf"{node}:\n\s+condition: service_started", X_CTILINK)


def test_ctilink_instances_log_in_with_the_service_seed_given_as_a_secret() -> None:
    command = re.search(r"command: (\[.*\])", X_CTILINK)
    assert command and command.group(1).startswith('["serve", "--nkey", "/run/secrets/service.nk"')
    assert "secrets: [service.nk]" in X_CTILINK
    assert "CTILINK_NATS_PASSWORD" not in COMPOSE


def test_ctilink_instances_stop_on_sigterm_with_thirty_seconds_grace() -> None:
    assert re.search(r"^  stop_signal: SIGTERM$", X_CTILINK, re.M)
    assert re.search(r"^  stop_grace_period: 30s$", X_CTILINK, re.M)
    assert re.search(r"^  restart: unless-stopped$", X_CTILINK, re.M)
    assert re.search(r"^  restart: unless-stopped$", X_NATS, re.M)


def test_ctilink_image_installs_the_wheel_built_from_the_repository_and_runs_ctilink() -> None:
    context = re.search(r"^\s+context: (\S+)$", X_CTILINK, re.M)
    dockerfile = re.search(r"^\s+dockerfile: (\S+)$", X_CTILINK, re.M)
    assert context and dockerfile
    root = (COMPOSE_DIR / context.group(1)).resolve()
    assert (root / "pyproject.toml").is_file()
    text = (root / dockerfile.group(1)).read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    # What tests/e2e/test_wheel.py builds and installs: the wheel, never the checkout.
    assert re.search(r"^RUN pip wheel --no-deps --wheel-dir /wheels /src$", text, re.M)
    assert re.search(r"^RUN pip install /wheels/ctilink-\*\.whl ", text, re.M)
    assert not re.search(r"^RUN pip install /src", text, re.M)
    assert re.search(r'^ENTRYPOINT \["ctilink"\]$', text, re.M)
    assert re.search(r'^CMD \["serve"\]$', text, re.M)


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((INFRA / "systemd" / "ctilink.service").read_text())
    return parser


def test_systemd_unit_runs_serve_as_its_own_user_and_stops_it_with_sigterm() -> None:
    service = unit()["Service"]
    assert service["ExecStart"] == (
        "/opt/ctilink/.venv/bin/ctilink serve --nkey /etc/ctilink/service.nk --http 127.0.0.1:8080"
    )
    assert service["User"] not in ("", "root")
    assert service["EnvironmentFile"] == "/etc/ctilink/ctilink.env"
    assert service["KillSignal"] == "SIGTERM"
    assert service["KillMode"] == "mixed"  # serve stops its publisher itself
    assert service["TimeoutStopSec"] == "30"
    assert service["Restart"] == "on-failure"
    assert service["NoNewPrivileges"] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert "network-online.target" in unit()["Unit"]["After"]


def test_systemd_env_example_sets_the_store_nats_and_replicas() -> None:
    lines = (INFRA / "systemd" / "ctilink.env.example").read_text().splitlines()
    env = dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))
    assert sorted(env) == [
        "CTILINK_NATS_URL",
        "CTILINK_STORE",
        "CTILINK_STREAM_REPLICAS",
    ]
    assert env["CTILINK_STORE"].startswith("postgresql://")
    assert all(url.startswith("nats://") for url in env["CTILINK_NATS_URL"].split(","))
    assert env["CTILINK_STREAM_REPLICAS"] == "3"


def test_systemd_counts_the_unit_started_once_readyz_answers_and_the_check_runs(tmp_path) -> None:
    post = unit()["Service"]["ExecStartPost"]
    assert post.startswith('/bin/sh -c "') and "http://127.0.0.1:8080/readyz" in post
    script = post.removeprefix("/bin/sh -c ").strip('"')
    python = str(INFRA.parent / ".venv" / "bin" / "python")
    script = script.replace("/opt/ctilink/.venv/bin/python", python)
    # Against a port nobody listens on the loop keeps waiting; it is the shell's to run.
    done = subprocess.run(["sh", "-n", "-c", script], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    check = script.split("until ", 1)[1].split(" 2>/dev/null", 1)[0]
    refused = subprocess.run(
        ["sh", "-c", check.replace("8080", "1")], capture_output=True, check=False
    )
    assert refused.returncode != 0  # not ready: the loop goes on


def test_compose_checks_each_instance_with_readyz_and_serves_http_with_a_token() -> None:
    assert '"--http", "0.0.0.0:8080"]' in COMPOSE
    assert "http://127.0.0.1:8080/readyz" in COMPOSE
    assert "CTILINK_WEB_TOKEN: ${CTILINK_WEB_TOKEN:?set CTILINK_WEB_TOKEN}" in COMPOSE
