"""The console's templates: text shown as it is, attributes carrying values exactly.

Every value written into a page's text goes through `visible` (Jinja's
`finalize`): a control, format or bidi character shows as the escape of its
code point (`\\u202e`), never obeyed. A `data-*` attribute instead carries the
stored value exactly (`| exact`): HTML would read a raw carriage return in an
attribute as a line feed, so it is written as `&#13;`. Both are escaped as
HTML. Long values are cut, and long lists paged, before they get here
(adapters/web/reads.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
import msgspec
from markupsafe import Markup, escape

from ctilink.adapters.text import visible

HERE = Path(__file__).parent
# What the HTML parser changes in an attribute's value, written as a reference it keeps.
_ATTRIBUTE = {ord("\r"): "&#13;"}
_encode = msgspec.json.Encoder().encode


def as_text(value: Any) -> Any:
    """A value written into a page's text: hidden characters made visible."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return visible(value)
    return value


def exact(value: Any) -> Markup:
    """A value for an attribute, carried exactly (a carriage return as `&#13;`)."""
    return Markup(str(escape(value)).translate(_ATTRIBUTE))


def shown_json(value: Any) -> Markup:
    """A field's value as JSON in a page's text, hidden characters made visible."""
    return escape(visible(_encode(value).decode()))


PAGES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,  # every value shown comes from events anyone could send
    undefined=jinja2.StrictUndefined,
    finalize=as_text,
)
PAGES.filters["exact"] = exact
PAGES.filters["json"] = shown_json


def render(name: str, **context: Any) -> bytes:
    """A page from its template, as UTF-8."""
    return PAGES.get_template(name).render(**context).encode()
