"""Campaign content: compiled once per campaign per process, rendered cheaply per recipient.

Everything that is the same for every recipient (the layout merged with the body, the
compiled templates, the plain-text version) is prepared once; per recipient only the template
render with that subscriber's context remains.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.template import Context, Engine, TemplateSyntaxError
from django.template import Template as DjangoTemplate
from django.utils.html import strip_tags

CONTENT_PLACEHOLDER = re.compile(r"\{\{\s*content\s*\}\}")

# A separate engine from the project's own pages: no file loaders, no request context.
# debug=True only makes syntax errors carry their line number (template_debug).
_html_engine = Engine(autoescape=True, debug=True)
_text_engine = Engine(autoescape=False, debug=True)


class TemplateError(ValueError):
    """Content that cannot be rendered; the message names the line and the reason."""


def _compile(source: str, engine: Engine, what: str) -> DjangoTemplate:
    try:
        return DjangoTemplate(source, engine=engine)
    except TemplateSyntaxError as error:
        info = getattr(error, "template_debug", None)
        where = f" (line {info['line']}: {info['during'].strip()!r})" if info else ""
        raise TemplateError(f"The {what} cannot be used{where}: {error}") from error


def check_template_source(source: str, what: str = "template") -> None:
    _compile(source, _html_engine, what)


@dataclass(frozen=True)
class RenderedContent:
    subject: str
    text: str
    html: str | None


class PreparedContent:
    """A campaign's subject, HTML and text, compiled once."""

    def __init__(self, *, subject: str, body: str, layout: str | None, is_html: bool) -> None:
        if layout is not None:
            if not CONTENT_PLACEHOLDER.search(layout):
                raise TemplateError(
                    "The layout has no {{ content }} placeholder, so the body would be lost; "
                    "add {{ content }} where the body goes."
                )
            # A function replacement, so backslashes in the body are kept as they are.
            source = CONTENT_PLACEHOLDER.sub(lambda _: body, layout, count=1)
        else:
            source = body
        self.subject = _compile(subject, _text_engine, "subject")
        if is_html:
            self.html: DjangoTemplate | None = _compile(source, _html_engine, "body")
            # The text alternative is derived from the source once, not from each rendered
            # message: the template variables survive tag stripping and are filled per
            # recipient in the text template.
            self.text = _compile(_html_to_text(source), _text_engine, "body")
        else:
            self.html = None
            self.text = _compile(source, _text_engine, "body")

    def render(self, context: dict[str, Any]) -> RenderedContent:
        # The engine's autoescape setting is not used by a Template rendered on its own: the
        # Context decides, so text parts get a context that does not escape.
        text_context = Context(context, autoescape=False)
        subject = " ".join(self.subject.render(text_context).split())
        html = self.html.render(Context(context)) if self.html is not None else None
        return RenderedContent(subject=subject, text=self.text.render(text_context), html=html)


_BLOCK_END = re.compile(r"</(p|div|h[1-6]|li|tr|table|ul|ol)>|<br\s*/?>", re.IGNORECASE)
_BLANK_LINES = re.compile(r"\n\s*\n\s*\n+")


def _html_to_text(source: str) -> str:
    text = _BLOCK_END.sub(lambda m: m.group(0) + "\n", source)
    text = strip_tags(text)
    lines = [line.strip() for line in text.splitlines()]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip() + "\n"
