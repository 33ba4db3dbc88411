"""A body converted between formats (HTML, Markdown, plain text) when a campaign's format
changes, and what the conversion would lose, said before anything is changed. Template tags
({{ subscriber.name }}, {% if %}) are set aside meanwhile, so no converter alters them."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

from markdownify import markdownify

from campaigns.rendering import FORMATS, _markdown, _Tags, html_to_text

# What Markdown cannot hold, found in HTML: (what the writer would lose, how it is found).
_HTML_ONLY = [
    ("tables", lambda tags, attrs: "table" in tags),
    ("colours, fonts and other inline styles", lambda tags, attrs: "style" in attrs),
    ("CSS classes", lambda tags, attrs: "class" in attrs),
    (
        "layout blocks and alignment",
        lambda tags, attrs: {"div", "center"} & tags or "align" in attrs,
    ),
    ("image sizes", lambda tags, attrs: "width" in attrs or "height" in attrs),
    ("<style> blocks", lambda tags, attrs: "style" in tags),
    (
        "underline, fonts and other HTML-only markup",
        lambda tags, attrs: {"u", "font", "span"} & tags,
    ),
]


class _Inventory(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)


def losses(body: str, source: str, target: str) -> list[str]:
    """What converting `body` from `source` to `target` would lose (empty: nothing)."""
    if source == target or not body.strip():
        return []
    if target == "plain":
        return ["all formatting (headings, emphasis, lists) and images; links keep their address"]
    if source == "html" and target == "markdown":
        inventory = _Inventory()
        inventory.feed(body)
        return [what for what, found in _HTML_ONLY if found(inventory.tags, inventory.attrs)]
    return []


def convert(body: str, source: str, target: str) -> str:
    for name in (source, target):
        if name not in FORMATS:
            raise ValueError(f"Unknown format {name!r}; use one of {', '.join(FORMATS)}.")
    if source == target:
        return body
    tags = _Tags()
    hidden = tags.hide(body)
    if source == "markdown":
        hidden, source = _markdown.render(hidden), "html"
    elif source == "plain" and target == "html":
        paragraphs = re.split(r"\n\s*\n", html.escape(hidden, quote=False).strip())
        return tags.show("\n".join(f"<p>{p.replace(chr(10), '<br>')}</p>" for p in paragraphs))
    elif source == "plain":  # to Markdown: plain text is Markdown already
        return body
    if target == "markdown":
        converted = markdownify(hidden, heading_style="ATX", bullets="-", escape_underscores=False)
        return tags.show(re.sub(r"\n{3,}", "\n\n", converted).strip() + "\n")
    if target == "plain":
        return tags.show(html_to_text(hidden))
    return tags.show(hidden)  # Markdown to HTML
