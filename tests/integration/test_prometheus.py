"""infra/prometheus: the scrape configuration and alert rules, checked by Prometheus' promtool.

`promtool test rules` fires each alert on example series (alerts_test.yml).
Without promtool (Debian's `prometheus` package) these skip with the reason,
except under CI=true, where scripts/test installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

PROMETHEUS = Path(__file__).resolve().parents[2] / "infra" / "prometheus"
PROMTOOL = shutil.which("promtool")

if PROMTOOL is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI needs promtool (apt-get install prometheus)")
    pytest.skip("no promtool (apt-get install prometheus)", allow_module_level=True)


def promtool(*args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    """Run promtool; its output for the assertion message."""
    return subprocess.run(
        [str(PROMTOOL), *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def test_the_alert_rules_are_valid_and_fire_on_their_example_series() -> None:
    checked = promtool("check", "rules", "alerts.yml")
    assert checked.returncode == 0 and "7 rules found" in checked.stdout, checked

    tested = promtool("test", "rules", "alerts_test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_the_example_series_would_catch_an_alert_that_waits_too_long(tmp_path) -> None:
    rules = (PROMETHEUS / "alerts.yml").read_text()
    slow = rules.replace(
        "max(ctilink_partitions_unconsumed) > 0\n        for: 1m",
        "max(ctilink_partitions_unconsumed) > 0\n        for: 20m",
    )
    assert slow != rules
    (tmp_path / "alerts.yml").write_text(slow)
    shutil.copy(PROMETHEUS / "alerts_test.yml", tmp_path)
    tested = promtool("test", "rules", "alerts_test.yml", cwd=tmp_path)
    assert tested.returncode != 0 and "CtilinkPartitionUnconsumed" in tested.stdout + tested.stderr


def test_the_scrape_configuration_is_valid_and_names_the_metrics_path(tmp_path) -> None:
    token = tmp_path / "web.token"
    token.write_text("s3cret\\n")
    config = (PROMETHEUS / "prometheus.yml").read_text()
    assert "metrics_path: /metrics" in config
    # The compose secret's path; promtool wants the file to be there.
    assert "/run/secrets/web.token" in config
    (tmp_path / "prometheus.yml").write_text(config.replace("/run/secrets/web.token", str(token)))
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path)
    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout  # alerts.yml, found beside it


def test_the_scrape_job_operations_md_shows_for_a_prometheus_elsewhere_is_valid(tmp_path) -> None:
    page = (PROMETHEUS.parents[1] / "docs" / "operations.md").read_text()
    jobs = re.findall(r"^```yaml\n(.*?)^```$", page, re.M | re.S)
    assert len(jobs) == 1
    (tmp_path / "prometheus.yml").write_text(jobs[0])
    shutil.copy(PROMETHEUS / "alerts.yml", tmp_path)  # "beside a copy of alerts.yml"

    checked = promtool("check", "config", "prometheus.yml", cwd=tmp_path)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 7 rules found" in checked.stdout
    assert "job_name: ctilink" in jobs[0]  # the job CtilinkNotReady reads


def test_every_metric_the_rules_use_is_one_the_service_exposes() -> None:
    from ctilink.adapters.ops.metrics import LiveState, Metrics

    metrics = Metrics()
    metrics.live = LiveState()
    metrics.live.store_up = 1
    metrics.live.unconsumed = 0
    metrics.live.pending = {0: 0}
    exposed = {
        line.split("{")[0].split(" ")[0]
        for line in metrics.text().decode().splitlines()
        if line and not line.startswith("#")
    }
    used = set(re.findall(r"\\b(ctilink_[a-z_]+)", (PROMETHEUS / "alerts.yml").read_text()))
    assert used <= exposed | {"ctilink_publisher_lag_events"}, used - exposed


def test_every_alert_says_what_it_means_and_links_its_runbook_in_operations_md() -> None:
    text = (PROMETHEUS / "alerts.yml").read_text()
    rules = re.split(r"^      - alert: ", text, flags=re.M)[1:]
    page = (PROMETHEUS.parents[1] / "docs" / "operations.md").read_text()
    headings = {h.strip().lower() for h in re.findall(r"^### (.+)$", page, re.M)}

    assert len(rules) == 7
    for rule in rules:
        name = rule.split("\n", 1)[0].strip()
        notes = dict(
            re.findall(r'^          (summary|description|runbook_url): "(.*)"$', rule, re.M)
        )
        assert notes.keys() == {"summary", "description", "runbook_url"}, name
        assert len(notes["description"]) > 40, name
        assert notes["runbook_url"] == f"docs/operations.md#{name.lower()}"
        assert name.lower() in headings, name
        assert f"`{name}`" in page  # in the table of alerts too
