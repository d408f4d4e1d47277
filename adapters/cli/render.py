"""Readable tables for people; --json output is encoded elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

# C0 and C1 control characters, DEL, and the line and paragraph separators: what a
# terminal would obey (clear the screen, move the cursor) rather than show.
_CONTROL = [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]
_ESCAPES = {code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" for code in _CONTROL}
_ESCAPES.update({ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"})


def safe(text: str) -> str:
    """Text as a terminal may print it: control characters shown as escapes."""
    return text.translate(_ESCAPES)


def safe_lines(text: str) -> str:
    """Several lines, each made safe; the line breaks between them stay."""
    return "\n".join(safe(line) for line in text.split("\n"))


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Left-aligned columns separated by two spaces, with a header rule."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


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
