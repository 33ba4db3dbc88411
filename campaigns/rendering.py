"""Campaign content: compiled once per campaign per process, rendered cheaply per recipient.

Everything that is the same for every recipient (the layout merged with the body, the
compiled templates, the plain-text version) is prepared once; per recipient only the template
render with that subscriber's context remains.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import css_inline
import inscriptis
from django.template import Context, Engine, TemplateSyntaxError
from django.template import Template as DjangoTemplate
from django.template.base import TextNode, Variable, VariableNode, render_value_in_context
from django.template.defaultfilters import default as default_filter
from inscriptis.model.config import ParserConfig
from markdown_it import MarkdownIt

from campaigns.template_language import CampaignEngine, TemplateError, check_size, hint

CONTENT_PLACEHOLDER = re.compile(r"\{\{\s*content\s*\}\}")

# A separate engine from the project's own pages, with the campaign template language.
_html_engine = CampaignEngine(autoescape=True)
_text_engine = CampaignEngine(autoescape=False)


# The most body and layout source a campaign may have: one message for every recipient.
MAX_CONTENT_BYTES = 1_000_000


__all__ = ["TemplateError"]


def _compile(source: str, engine: Engine, what: str) -> DjangoTemplate:
    try:
        return DjangoTemplate(source, engine=engine)
    except TemplateSyntaxError as error:
        info = getattr(error, "template_debug", None)
        where = f" (line {info['line']}: {info['during'].strip()!r})" if info else ""
        raise TemplateError(f"The {what} cannot be used{where}: {hint(str(error))}") from error


def check_template_source(source: str, what: str = "template") -> None:
    _compile(source, _html_engine, what)


def check_layout(layout: str) -> None:
    """A layout must compile, say where the body goes, and use only known variables."""
    if not CONTENT_PLACEHOLDER.search(layout):
        raise TemplateError(
            "The layout has no {{ content }} placeholder, so the body would be lost; "
            "add {{ content }} where the body goes."
        )
    check_variables(layout, "layout", extra={"content"})


_MISSING = object()


class FastTemplate:
    """A template of only text and {{ variables }} (optionally |default:"…"), rendered by
    joining strings instead of walking Django's node tree: the same output, about ten times
    faster, which matters when it runs for every recipient of a campaign.

    `compile` returns None for anything else ({% if %}, other filters); such a template is
    rendered by Django. Values are looked up in plain dicts only; a value that is not a
    string (a number, a date) goes through Django's own conversion.
    """

    def __init__(self, parts: list, autoescape: bool) -> None:
        self.parts = parts
        self.autoescape = autoescape
        self._context = Context(autoescape=autoescape)

    @classmethod
    def compile(cls, template: DjangoTemplate, *, autoescape: bool) -> FastTemplate | None:
        parts: list = []
        for node in template.nodelist:
            if isinstance(node, TextNode):
                parts.append(node.s)
                continue
            if not isinstance(node, VariableNode):
                return None
            expression = node.filter_expression
            variable = expression.var
            if not isinstance(variable, Variable) or variable.lookups is None or variable.translate:
                return None
            fallback = _MISSING
            for func, args in expression.filters:
                if func is not default_filter or len(args) != 1 or args[0][0]:
                    return None
                fallback = args[0][1]
            parts.append((tuple(variable.lookups), fallback, autoescape))
        return cls(parts, autoescape)

    @staticmethod
    def _value(lookups: tuple[str, ...], context: dict[str, Any]) -> Any:
        value: Any = context
        for name in lookups:
            if not isinstance(value, dict):
                raise _NotPlain
            value = value.get(name, _MISSING)
            if value is _MISSING:
                return ""  # Django's string_if_invalid
        if isinstance(value, dict):
            raise _NotPlain
        return value

    def _text(self, part: tuple, context: dict[str, Any]) -> str:
        lookups, fallback, autoescape = part
        value = self._value(lookups, context)
        if fallback is not _MISSING and not value:
            value = fallback
            if isinstance(value, str) and not autoescape:
                return value
        if type(value) is str:
            # html.escape is what Django's escape() calls, without its lazy-string wrapper.
            return html.escape(value) if autoescape else value
        return render_value_in_context(value, self._context)

    def render(self, context: dict[str, Any], cache: dict | None = None) -> str:
        """cache: texts of variables already rendered for this recipient (shared by the
        subject, HTML and text, which mostly use the same few variables)."""
        if cache is None:
            cache = {}
        out = []
        for part in self.parts:
            if part.__class__ is str:
                out.append(part)
                continue
            text = cache.get(part)
            if text is None:
                text = cache[part] = self._text(part, context)
            out.append(text)
        return "".join(out)


class _NotPlain(Exception):
    """A lookup met something other than a dict: leave it to Django."""


class _Compiled:
    """A Django template with its fast path, when it has one."""

    def __init__(self, source: str, engine: Engine, what: str, autoescape: bool) -> None:
        self.template = _compile(source, engine, what)
        self.fast = FastTemplate.compile(self.template, autoescape=autoescape)
        self.autoescape = autoescape

    def render(self, context: dict[str, Any], cache: dict | None = None) -> str:
        if self.fast is not None:
            try:
                return self.fast.render(context, cache)
            except _NotPlain:
                pass
        return self.template.render(Context(context, autoescape=self.autoescape))


@dataclass(frozen=True)
class RenderedContent:
    subject: str
    text: str
    html: str | None


class PreparedContent:
    """A campaign's subject, HTML and text, compiled once.

    HTML and Markdown bodies are placed in the layout, their CSS is inlined (mail clients
    ignore <style> blocks) and a plain-text alternative is derived, all once; template tags
    are set aside meanwhile so that neither the Markdown parser nor the HTML serialiser can
    alter them (`{% if a < b %}` would otherwise come back as `{% if a &lt; b %}`).
    """

    def __init__(
        self,
        *,
        subject: str,
        body: str,
        layout: str | None,
        format: str,
        link_id: Callable[[str], int] | None = None,
        open_pixel: bool = False,
        tx: bool = False,
    ) -> None:
        """link_id: with click tracking, gives the id under which a URL is tracked; each
        http(s) link of the HTML then leads through the tracking redirect. open_pixel: add
        the open-tracking image. tx: a transactional message's, whose `tx.data` is known."""
        if format not in FORMATS:
            raise TemplateError(f"Unknown body format {format!r}; use one of {FORMATS}.")
        if "\r" in subject or "\n" in subject:
            raise TemplateError("The subject contains a line break; a subject is one line.")
        size = len(body.encode()) + len((layout or "").encode())
        if size > MAX_CONTENT_BYTES:
            raise TemplateError(
                f"The body and its layout are {size // 1000:,} KB; a message may be at most "
                f"{MAX_CONTENT_BYTES // 1000:,} KB (many servers refuse larger ones, and Gmail "
                "clips anything over 102 KB). Link to long content instead of including it."
            )
        check_variables(subject, "subject", tx=tx)
        check_variables(body, "body", tx=tx)
        if layout is not None:
            check_layout(layout)
        # The engine's autoescape setting is not used by a Template rendered on its own: the
        # Context decides, so text parts are rendered with autoescape off.
        self.subject = _Compiled(subject, _text_engine, "subject", autoescape=False)
        if format == "plain":
            self.html: _Compiled | None = None
            self.text = _Compiled(body, _text_engine, "body", autoescape=False)
            return
        # Compile the body on its own first, so that its errors carry its own line numbers.
        _compile(body, _html_engine, "body")
        tags = _Tags()
        source = tags.hide(body)
        if format == "markdown":
            source = _markdown.render(source)
        if layout is not None:
            before, after = CONTENT_PLACEHOLDER.split(layout, maxsplit=1)
            source = tags.hide(before) + source + tags.hide(after)
        if link_id is not None:
            source = _track_links(source, link_id, tags)
        if open_pixel:
            source = _add_pixel(source, tags)
        self.html = _Compiled(tags.show(inline_css(source)), _html_engine, "body", True)
        # The text alternative is derived from the source once, not from each rendered
        # message: the template variables survive the conversion and are filled per
        # recipient in the text template.
        self.text = _Compiled(tags.show(html_to_text(source)), _text_engine, "body", False)

    def render(self, context: dict[str, Any]) -> RenderedContent:
        cache: dict = {}
        subject = " ".join(self.subject.render(context, cache).split())
        html = self.html.render(context, cache) if self.html is not None else None
        text = check_size(self.text.render(context, cache), "text")
        if html is not None:
            check_size(html, "HTML")
        return RenderedContent(subject=subject, text=text, html=html)


FORMATS = ("html", "markdown", "plain")

_markdown = MarkdownIt("commonmark", {"html": True, "linkify": False}).enable("table")
_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


class _Tags:
    """Template tags swapped for inert words while HTML tools work on the source."""

    def __init__(self) -> None:
        self.hidden: list[str] = []

    def hide(self, source: str) -> str:
        def swap(match: re.Match) -> str:
            self.hidden.append(match.group(0))
            return f"zqtag{len(self.hidden) - 1}qz"

        return _TAG.sub(swap, source)

    def add(self, tag: str) -> str:
        """A placeholder for template syntax inserted here (not written by the user)."""
        self.hidden.append(tag)
        return f"zqtag{len(self.hidden) - 1}qz"

    def show(self, source: str) -> str:
        return re.sub(r"zqtag(\d+)qz", lambda m: self.hidden[int(m.group(1))], source)


# Links to track: http(s) URLs in <a href>, without template tags in them (a URL that differs
# per recipient cannot be one tracked link).
_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'\s]+)\2""", re.IGNORECASE)


def _track_links(source: str, link_id: Callable[[str], int], tags: _Tags) -> str:
    def rewrite(match: re.Match) -> str:
        url = html.unescape(match.group(3))
        if "zqtag" in url:
            return match.group(0)
        tracked = tags.add("{{ tracking_base }}") + f"{link_id(url)}/"
        return f"{match.group(1)}{match.group(2)}{tracked}{match.group(2)}"

    return _HREF.sub(rewrite, source)


def _add_pixel(source: str, tags: _Tags) -> str:
    pixel = (
        f'<img src="{tags.add("{{ open_url }}")}" width="1" height="1" alt="" '
        'style="display:block;border:0;width:1px;height:1px">'
    )
    at = source.lower().rfind("</body>")
    return source[:at] + pixel + source[at:] if at >= 0 else source + pixel


def inline_css(source: str) -> str:
    """<style> rules moved into style attributes (only when there are any)."""
    if "<style" not in source.lower():
        return source
    try:
        return (
            css_inline.inline(source)
            if "<html" in source.lower()
            else css_inline.inline_fragment(source, "")
        )
    except ValueError as error:
        raise TemplateError(f"The CSS of the body or layout cannot be used: {error}") from error


_text_config = ParserConfig(display_links=True)


def html_to_text(source: str) -> str:
    return inscriptis.get_text(source, _text_config).strip() + "\n"


# --- Unknown variables ----------------------------------------------------------------------

# What a campaign can use; subscriber.attributes.<anything> comes from the subscriber's row.
VARIABLES = {
    "subscriber": {"email", "name", "uuid", "attributes"},
    "campaign": {"id", "name"},
    "unsubscribe_url": None,
    "preferences_url": None,
    "view_url": None,
}
_VARIABLE_LIST = (
    "subscriber.email, subscriber.name, subscriber.uuid, subscriber.attributes.<column>, "
    "campaign.name, campaign.id, unsubscribe_url, preferences_url, view_url; in a "
    "transactional template also tx.data.<key>"
)
_INVALID = "\x00missing:%s\x00"
_checking_engine = CampaignEngine(autoescape=False, string_if_invalid=_INVALID)
_MISSING_MARK = re.compile(r"\x00missing:(.*?)\x00")


class _AnyAttributes(dict):
    """Attributes differ between subscribers: any name is accepted when checking."""

    def __missing__(self, key: str) -> _AnyAttributes:
        return _AnyAttributes()  # attributes may hold nested objects too


def sample_context(extra: set[str] | None = None, *, tx: bool = False) -> dict[str, Any]:
    """Values for every variable a message may use (`tx`: a transactional message's data)."""
    context: dict[str, Any] = {
        "subscriber": {
            "email": "sample@example.com",
            "name": "Sample",
            "uuid": "00000000-0000-4000-8000-000000000000",
            "attributes": _AnyAttributes(),
        },
        "campaign": {"id": 1, "name": "Sample"},
        "unsubscribe_url": "https://example.com/u/",
        "preferences_url": "https://example.com/p/",
        "view_url": "https://example.com/v/",
    }
    if tx:
        context["tx"] = {"data": _AnyAttributes()}
    for name in extra or ():
        context[name] = ""
    return context


def check_variables(
    source: str, what: str, extra: set[str] | None = None, *, tx: bool = False
) -> None:
    """Refuse variables a campaign does not have (a typo would otherwise print nothing)."""
    template = _compile(source, _checking_engine, what)
    rendered = template.render(Context(sample_context(extra, tx=tx), autoescape=False))
    missing = list(dict.fromkeys(_MISSING_MARK.findall(rendered)))
    if not missing:
        return
    name = missing[0]
    line = next(
        (n for n, text in enumerate(source.splitlines(), 1) if name.split("|")[0] in text), None
    )
    where = f" (line {line})" if line else ""
    raise TemplateError(
        f"The {what} uses an unknown variable {{{{ {name} }}}}{where}. Known variables: "
        f"{_VARIABLE_LIST}."
    )
