"""Readable tables for people; --json output is encoded elsewhere."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from itertools import islice

from ctilink.adapters.text import visible


def safe(text: str) -> str:
    """Text as a terminal may print it: control, format and separator characters escaped
    (`\\u001b`, `\\u202e`: ctilink.adapters.text), never obeyed."""
    return visible(text)


def safe_lines(text: str) -> str:
    """Several lines, each made safe; the line breaks between them stay."""
    return "\n".join(safe(line) for line in text.split("\n"))


TABLE_PAGE = 1000  # rows formatted at a time by `print_table`


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, with a header rule."""
    return "\n".join(table_lines(headers, rows, page=max(len(rows), 1)))


def table_lines(
    headers: Sequence[str], rows: Iterable[Sequence[object]], page: int = TABLE_PAGE
) -> Iterator[str]:
    """A table's lines, `page` rows at a time: never the whole table in memory.

    Column widths come from the first page and widen when a later row needs it,
    so a table longer than a page may shift its columns once in a while.
    """
    growing = GrowingTable(headers)
    source = iter(rows)
    while chunk := list(islice(source, page)):
        yield from growing.lines(chunk)
    yield from growing.lines([])  # the header alone, for a table without rows


class GrowingTable:
    """A table told a few rows at a time (a page, or what `log --follow` found): the header
    before the first rows, columns as wide as every row so far needs."""

    def __init__(self, headers: Sequence[str]) -> None:
        self.headers = headers
        self.widths = [len(h) for h in headers]
        self.started = False

    def lines(self, rows: Sequence[Sequence[object]]) -> Iterator[str]:
        """The lines of these rows, the header first if it was not told yet."""
        cells = [[_cell(v) for v in row] for row in rows]
        for row in cells:
            self.widths = [max(w, len(c)) for w, c in zip(self.widths, row, strict=True)]
        if not self.started:
            yield from _header(self.headers, self.widths)
            self.started = True
        for row in cells:
            yield "  ".join(c.ljust(w) for c, w in zip(row, self.widths, strict=True)).rstrip()


def print_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Write a table to stdout a page at a time (a long log never waits to be whole)."""
    lines: list[str] = []
    for line in table_lines(headers, rows):
        lines.append(line)
        if len(lines) >= TABLE_PAGE:
            print("\n".join(lines))
            lines.clear()
    if lines:
        print("\n".join(lines))


def _header(headers: Sequence[str], widths: list[int]) -> Iterator[str]:
    """The header line and its rule."""
    yield "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    yield "  ".join("-" * w for w in widths)


def _cell(value: object) -> str:
    """How one value reads in a table."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return safe(str(value))


def pairs(items: Sequence[tuple[str, object]]) -> str:
    """`key  value` lines, keys aligned."""
    width = max(len(k) for k, _ in items)
    return "\n".join(f"{k.ljust(width)}  {_cell(v)}" for k, v in items)
