"""Imports point inward: adapters -> projections -> domain, never back (the README's layout)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support import ROOT

# What each layer may not import, by module name prefix.
FORBIDDEN = {
    "domain": ("ctilink.adapters", "ctilink.projections", "nats", "sqlite3", "psycopg"),
    "projections": ("ctilink.adapters", "nats", "sqlite3", "psycopg", "eventsourcing"),
}


def imported(path: Path) -> set[str]:
    """Every module a file imports, absolute."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_imports_nothing_from_the_layers_outside_it(layer: str) -> None:
    found = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / layer).rglob("*.py")
        for name in imported(path)
        if name.startswith(FORBIDDEN[layer])
    }

    assert not found


def test_every_module_imports_ctilink_by_its_installed_name() -> None:
    bare = {
        f"{path.relative_to(ROOT)}: {name}"
        for folder in ("domain", "projections", "adapters", "tests", "bench")
        for path in (ROOT / folder).rglob("*.py")
        for name in imported(path)
        if name.split(".")[0] in ("domain", "projections", "adapters")
    }

    assert not bare
