"""Text as people are shown it: hidden characters made visible, long values cut.

Every human output (the CLI's tables, the console's text) goes through `visible`:
a control, format or separator character (Unicode Cc, Cf, Zl, Zp, and a lone
surrogate, Cs) is shown as the escape of its code point, `\\u202e`, never
obeyed, so that "\\u202enimda" cannot pass for "admin" nor "b\\u200bob" for "bob".
Tab and newline are escaped too: in a table cell they would break the row.
A backslash already in the text stays as it is. `--json` never comes here.
"""

from __future__ import annotations

import unicodedata

HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
LONGEST = 256  # characters of one value shown whole (SPEC v1.1's longest text)


def escape(char: str) -> str:
    """A character as the escape of its code point."""
    code = ord(char)
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def visible(text: str) -> str:
    """The text with every control, format and separator character shown escaped."""
    if text.isprintable():  # the usual case: nothing hidden (isprintable is False for all five)
        return text
    return "".join(
        escape(char) if not char.isprintable() and unicodedata.category(char) in HIDDEN else char
        for char in text
    )


def cut(text: str, longest: int = LONGEST) -> str:
    """The text, or its start and a visible marker saying how long it was."""
    if len(text) <= longest:
        return text
    return f"{text[:longest]}…[cut: {len(text):,} chars]"


def shown(text: str, longest: int = LONGEST) -> str:
    """A value as a page or a table shows it: cut when long, hidden characters escaped."""
    return visible(cut(text, longest))
