"""The shell examples of the documentation and the `docs-test` annotations before each.

The vocabulary is told in tests/docs/test_docs_commands.py's docstring.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELLS = {"sh", "bash", "shell", "console"}
VERBS = {"skip", "setup", "replace", "background", "beside", "expect"}
FENCE = re.compile(r"^ {0,3}(`{3,})\s*([\w+-]*)")
ANNOTATION = re.compile(r"^<!--\s*docs-test:\s*([\w-]+)\s*(.*?)\s*-->$")
# A command's leading VAR=value assignments, before the program it runs.
ASSIGNMENTS = re.compile(r"^(?:[A-Za-z_]\w*=\S*\s+)*")


def documents() -> list[Path]:
    """Every page whose shell examples are checked: README.md, docs/*.md, infra/README.md."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "infra/README.md"]


@dataclass(frozen=True)
class Note:
    """One annotation: its verb and its arguments (a skip's reason is one argument)."""

    verb: str
    args: tuple[str, ...]


@dataclass
class Block:
    """A fenced shell example, where it stands, and the annotations right before it."""

    path: Path
    line: int
    language: str
    text: str
    notes: list[Note] = field(default_factory=list)

    @property
    def name(self) -> str:
        """PAGE:LINE of the opening fence, as a test id."""
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    def args(self, verb: str) -> list[tuple[str, ...]]:
        """The arguments of every annotation with this verb, in order."""
        return [note.args for note in self.notes if note.verb == verb]

    def commands(self) -> list[str]:
        """The commands a user would type: continuations joined, `$ ` prompts only
        in console blocks, blank and comment-only lines left out."""
        lines = self.text.splitlines()
        if self.language == "console":
            lines = [line[2:] for line in lines if line.startswith("$ ")]
        joined: list[str] = []
        for line in lines:
            if joined and joined[-1].endswith("\\"):
                joined[-1] = joined[-1][:-1] + line.lstrip()
            else:
                joined.append(line)
        return [line for line in joined if line.strip() and not line.lstrip().startswith("#")]


def program(command: str) -> str:
    """The command without its leading VAR=value assignments."""
    return command[ASSIGNMENTS.match(command).end() :]  # type: ignore[union-attr]


def parse_note(text: str) -> Note | None:
    """The annotation on a line, or None when the line holds none."""
    found = ANNOTATION.match(text.strip())
    if found is None:
        return None
    verb, rest = found.groups()
    return Note(verb, (rest,) if verb == "skip" else tuple(shlex.split(rest)))


def parse(path: Path, text: str | None = None) -> tuple[list[Block], list[str]]:
    """The page's shell blocks, and the annotations that stand before no shell block."""
    lines = (path.read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    orphans: list[str] = []
    pending: list[tuple[int, Note]] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        fence = FENCE.match(line)
        if fence:
            ticks, language = fence.groups()
            end = next(
                (i for i in range(number + 1, len(lines)) if lines[i].strip() == ticks),
                len(lines),
            )
            if language in SHELLS:
                body = "\n".join(lines[number + 1 : end])
                notes = [note for _, note in pending]
                blocks.append(Block(path, number + 1, language, body, notes))
            else:
                orphans += [f"{path.name}:{at}" for at, _ in pending]
            pending = []
            number = end + 1
            continue
        note = parse_note(line)
        if note is not None:
            pending.append((number + 1, note))
        elif line.strip():  # text between an annotation and the block: it is not the block's
            orphans += [f"{path.name}:{at}" for at, _ in pending]
            pending = []
        number += 1
    orphans += [f"{path.name}:{at}" for at, _ in pending]
    return blocks, orphans


def problems(block: Block) -> list[str]:
    """What makes a block's annotations unusable: it must be skipped with a reason, or
    run with at least one expected line of output."""
    found = [f"unknown annotation {n.verb!r}" for n in block.notes if n.verb not in VERBS]
    skips = block.args("skip")
    if skips:
        if not all(reason and reason[0].strip() for reason in skips):
            found.append("skip without a reason")
        if len(block.notes) > len(skips):
            found.append("skipped, yet annotated how to run")
        return found
    if not block.args("expect"):
        found.append('neither skipped (docs-test: skip REASON) nor checked (docs-test: expect "…")')
    shapes = {"setup": 1, "replace": 2, "background": 2, "beside": 2, "expect": 1}
    for note in block.notes:
        wanted = shapes.get(note.verb)
        if wanted is not None and len(note.args) != wanted:
            found.append(f"{note.verb} takes {wanted} quoted argument(s), not {len(note.args)}")
    for old, _ in [args for args in block.args("replace") if len(args) == 2]:
        if old not in block.text and not any(old in " ".join(a) for a in block.args("setup")):
            found.append(f"replace {old!r}: not in the block")
    commands = [program(command) for command in block.commands()]
    for prefix, _ in [args for args in block.args("background") if len(args) == 2]:
        if not any(command.startswith(prefix) for command in commands):
            found.append(f"background {prefix!r} matches no command of the block")
    return found


def every_block() -> tuple[list[Block], list[str]]:
    """Every shell block of every checked page, and every annotation standing before none."""
    blocks: list[Block] = []
    orphans: list[str] = []
    for path in documents():
        found, lost = parse(path)
        blocks += found
        orphans += lost
    return blocks, orphans
