"""The artifact a user installs: the wheel, in a clean venv outside the checkout.

Built and installed as infra/compose/Dockerfile does (`pip wheel --no-deps`, then
`pip install` of the wheel), then run from another directory, where nothing of
the checkout can be imported by accident.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import ROOT

SOURCE_FOLDERS = {"domain": "ctilink/domain", "projections": "ctilink/projections"}
SOURCE_FOLDERS["adapters"] = "ctilink/adapters"


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run a command; fail the test with its output when it fails."""
    done = subprocess.run(
        [str(c) for c in command], cwd=cwd, capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, (
        f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from a copy of the checkout (a build/ folder left in it would leak in)."""
    source = tmp_path_factory.mktemp("source") / "ctilink"
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (t.decode() for t in tracked)):
        if (ROOT / name).is_file():  # a file deleted but not yet committed is skipped
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("wheels")
    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--wheel-dir",
        out,
        source,
        cwd=out,
    )
    (found,) = out.glob("ctilink-*.whl")
    return found


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A clean venv outside the checkout with the wheel (and its dependencies) installed."""
    home = tmp_path_factory.mktemp("user")
    venv.create(home / "venv", with_pip=True)
    python = home / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", wheel, cwd=home)
    yield home


def ctilink(home: Path, *args: str) -> str:
    """The installed console script, run in a directory of its own."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTILINK_", "PYTHON"))}
    return run(home / "venv" / "bin" / "ctilink", *args, cwd=home, env=env)


def test_the_wheel_holds_every_module_of_the_checkout_and_only_ctilink_at_top_level(
    wheel: Path,
) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names if not name.startswith("ctilink-")}
    expected = {
        f"{packaged}/{path.relative_to(ROOT / folder).as_posix()}"
        for folder, packaged in SOURCE_FOLDERS.items()
        for path in (ROOT / folder).rglob("*.py")
    }

    assert tops == {"ctilink"}
    assert expected <= set(names), sorted(expected - set(names))


def test_every_subcommand_answers_help_from_the_installed_wheel(installed: Path) -> None:
    top = ctilink(installed, "--help")
    commands = re.findall(r"^    ([a-z]+)\b", top, re.M)  # the COMMAND list

    assert {"ingest", "status", "verify", "serve", "publish"} <= set(commands)
    for command in commands:
        assert f"usage: ctilink {command}" in ctilink(installed, command, "--help")


def test_the_example_scenario_runs_on_the_installed_wheel_s8(installed: Path) -> None:
    store = str(installed / "demo.db")
    scenario = str(ROOT / "examples" / "scenario.jsonl")

    summary = ctilink(installed, "ingest", scenario, "--store", store)
    status = ctilink(installed, "status", "acme", "--json", "--store", store)
    verified = ctilink(installed, "verify", "--store", store)

    assert "rejected   0" in summary
    assert status.strip() == (ROOT / "examples" / "expected-acme-status.json").read_text().strip()
    *table, summary = verified.splitlines()
    assert [line.split()[-1] for line in table[2:]] == ["ok", "ok", "ok"]
    assert summary.startswith("verified 3 networks, 53 positions") and summary.endswith("all ok")


def test_the_installed_wheel_brings_no_top_level_domain_adapters_or_projections(
    installed: Path,
) -> None:
    python = installed / "venv" / "bin" / "python"
    probe = (
        "import importlib.util as u; "
        "print([n for n in ('domain', 'adapters', 'projections') if u.find_spec(n)])"
    )

    assert run(python, "-c", probe, cwd=installed).strip() == "[]"


def test_the_installed_wheel_serves_the_console_with_its_templates_and_styles(
    installed: Path,
) -> None:
    import urllib.request

    store = str(installed / "console.db")
    ctilink(installed, "ingest", str(ROOT / "examples" / "scenario.jsonl"), "--store", store)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CTILINK_", "PYTHON"))}
    console = subprocess.Popen(
        [
            installed / "venv" / "bin" / "ctilink",
            "web",
            "--store",
            store,
            "--listen",
            "127.0.0.1:0",
        ],
        stdout=subprocess.PIPE,
        cwd=installed,
        env=env,
    )
    try:
        assert console.stdout is not None
        url = console.stdout.readline().decode().split("listening on ", 1)[1].strip()
        with urllib.request.urlopen(url + "networks/acme", timeout=30) as page:
            assert 'data-effective="central"' in page.read().decode()
        with urllib.request.urlopen(url + "static/console.css", timeout=30) as styles:
            assert b".state-unavailable" in styles.read()
    finally:
        console.terminate()
        console.wait(30)
