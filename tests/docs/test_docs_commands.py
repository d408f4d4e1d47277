"""Docs as tests: every shell example of README.md, docs/*.md and infra/README.md runs as
written, or says why it cannot.

Each fenced ```sh, ```bash, ```shell or ```console block (in a console block, the lines
after `$ `) is run in a fresh folder holding a copy of examples/ and infra/, with the
checkout's `ctilink` and `nats-server` first on PATH and no CTILINK_* variable of the
caller (so the store is ./ctilink.db of that folder, and the embedded nats-server takes a
free port: never the machine's 4222). Annotations, HTML comments right before the block
(blank lines may stand between), say how; a block that is neither skipped nor checked
fails `test_every_shell_example_is_run_or_says_why_not`:

    <!-- docs-test: skip REASON -->          not run; the reason is required
    <!-- docs-test: expect "TEXT" -->        the block's output (stdout and stderr) holds
                                             TEXT; at least one per block that runs
    <!-- docs-test: setup "COMMAND" -->      run first (must exit 0; its output is not
                                             the block's), e.g. ingest the example
    <!-- docs-test: replace "OLD" "NEW" -->  in the block and its setups, before running:
                                             for a host, password or port that only
                                             stands for the reader's own
    <!-- docs-test: background "PREFIX" "READY" -->
                                             each command starting with PREFIX (after
                                             VAR=value) is long-running: started alone,
                                             waited for until READY is in its output,
                                             sent SIGTERM, and must exit 0
    <!-- docs-test: beside "COMMAND" "READY" -->
                                             COMMAND (placeholders filled) runs beside
                                             the block: started first, waited for until
                                             READY is in its output, sent SIGTERM once
                                             the block is done, and must exit 0

NEW and setups may name placeholders, each made once per block: {port} (a free port),
{pg} (a PostgreSQL store in a database the tests create; as the integration tests',
skipped without PostgreSQL except under CI=true) and {nats} (the URL of a nats-server
run from infra/nats/nats-server.conf on a free port, with the users' seeds `service.nk`,
`producer.nk`, `reader.nk` in the block's folder). The other commands of a block run in
order as one bash script with `set -euo pipefail`; variables it exports reach the
background commands after it.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctilink.adapters.cli.main import COMMANDS, parser
from tests.docs.blocks import ROOT, Block, every_block, parse, problems
from tests.docs.workspace import BIN, Workspace
from tests.stores import Postgres

BLOCKS, ORPHANS = every_block()
RUN = [block for block in BLOCKS if not block.args("skip")]


@pytest.fixture
def workspace(tmp_path: Path, postgres: Postgres) -> Iterator[Workspace]:
    """A fresh folder for one block; its servers stopped afterwards."""
    space = Workspace(tmp_path, postgres.new_store)
    yield space
    space.close()


def test_every_shell_example_is_run_or_says_why_not() -> None:
    assert len(BLOCKS) >= 10  # the extractor finds the pages' examples
    wrong = {block.name: problems(block) for block in BLOCKS if problems(block)}
    assert wrong == {}


def test_no_annotation_stands_before_anything_but_a_shell_example() -> None:
    assert ORPHANS == []


def test_an_example_without_an_annotation_or_with_a_bare_skip_is_refused() -> None:
    page = (
        "text\n\n```sh\nctilink diagram\n```\n\n"
        "<!-- docs-test: skip -->\n```bash\nctilink networks\n```\n\n"
        '<!-- docs-test: expect "ok" -->\nnot the block\n```sh\nctilink log acme\n```\n'
        '<!-- docs-test: background "ctilink web" "listening" -->\n'
        '<!-- docs-test: expect "x" -->\n<!-- docs-test: replace "nowhere" "{port}" -->\n'
        "```console\n$ ctilink serve\nctilink serve: ready\n```\n"
    )

    blocks, orphans = parse(ROOT / "README.md", page)

    assert [problems(block) for block in blocks] == [
        ['neither skipped (docs-test: skip REASON) nor checked (docs-test: expect "…")'],
        ["skip without a reason"],
        ['neither skipped (docs-test: skip REASON) nor checked (docs-test: expect "…")'],
        [
            "replace 'nowhere': not in the block",
            "background 'ctilink web' matches no command of the block",
        ],
    ]
    assert orphans == ["README.md:12"]  # the expect cut off from its block by text
    assert blocks[3].commands() == ["ctilink serve"]  # a console block's output is no command


def test_a_block_runs_in_its_own_folder_with_the_checkouts_ctilink_and_no_store_of_the_caller(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CTILINK_STORE", str(tmp_path / "callers.db"))
    page = "```sh\necho store=${CTILINK_STORE:-unset}; command -v ctilink; pwd; ls\n```\n"
    failing = "```sh\nctilink status acme\necho not reached\n```\n"
    space = Workspace(tmp_path / "space", lambda: "")

    output = space.run(parse(ROOT / "README.md", page)[0][0])
    with pytest.raises(AssertionError, match="exited 2"):
        space.run(parse(ROOT / "README.md", failing)[0][0])

    assert output.splitlines() == [
        "store=unset",
        str(BIN / "ctilink"),
        str(tmp_path / "space" / "run"),
        "examples",
        "infra",
    ]


@pytest.mark.parametrize("block", RUN, ids=[block.name for block in RUN])
def test_the_documented_commands_run_as_written(block: Block, workspace: Workspace) -> None:
    output = workspace.run(block)

    missing = [text for (text,) in block.args("expect") if text not in output]
    assert missing == [], output


def table_commands(page: Path) -> str:
    """The rows of a page's command table (`| \\`ctilink …`)."""
    return "\n".join(
        line for line in page.read_text().splitlines() if re.match(r"\| `(ctilink )?\w", line)
    )


@pytest.mark.parametrize("page", ["README.md", "docs/commands.md"])
def test_every_command_of_ctilink_is_in_the_command_tables(page: str) -> None:
    rows = table_commands(ROOT / page)

    missing = [name for name in COMMANDS if not re.search(rf"`(ctilink )?{name}\b", rows)]

    assert missing == []


def options_of(command: str) -> set[str]:
    """Every option string `ctilink COMMAND` takes, from its own parser."""
    top = parser([command])
    verbs = next(a for a in top._actions if isinstance(a, argparse._SubParsersAction))
    return {flag for action in verbs.choices[command]._actions for flag in action.option_strings}


def documented_options(page: Path) -> list[tuple[str, str]]:
    """(command, --option) for every option a command table's first column shows."""
    pairs = []
    for row in table_commands(page).splitlines():
        for code in re.findall(r"`([^`]+)`", row.split(" | ")[0]):
            name = code.removeprefix("ctilink ").split()[0]
            pairs += [(name, option) for option in re.findall(r"--[a-z][a-z-]*", code)]
    return pairs


@pytest.mark.parametrize("page", ["README.md", "docs/commands.md"])
def test_every_option_the_command_tables_show_is_one_the_command_takes(page: str) -> None:
    shown = documented_options(ROOT / page)

    unknown = [(name, option) for name, option in shown if option not in options_of(name)]

    assert len(shown) >= 10 and unknown == []
