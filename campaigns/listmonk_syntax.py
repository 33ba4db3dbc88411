"""Templates and bodies written for listmonk (Go's template language) translated into this
project's (Django's), once, when they are saved through the API: the common parts that
listmonk's documentation and default templates use. An action this does not know is refused
with its text, never passed through or dropped silently.

- `{{ template "content" . }}` becomes `{{ content }}`;
- `{{ .Subscriber.Name }}`, `{{ .Subscriber.Email }}`, `{{ .Subscriber.Attribs.city }}` and
  `{{ index .Subscriber.Attribs "city" }}` become `{{ subscriber.name }}`,
  `{{ subscriber.email }}` and `{{ subscriber.attributes.city }}`;
- `{{ .Subscriber.UUID }}` becomes `{{ subscriber.uuid }}`;
- `{{ .Tx.Data.order }}` and `{{ index .Tx.Data "order" }}` become `{{ tx.data.order }}`
  (a transactional template's data; a campaign refuses it when it is checked);
- `{{ .Campaign.Name }}` becomes `{{ campaign.name }}`;
- `{{ UnsubscribeURL }}`, `{{ ManageURL }}` and `{{ MessageURL }}` become
  `{{ unsubscribe_url }}`, `{{ preferences_url }}` and `{{ view_url }}`;
- `{{ TrackLink "https://…" }}` becomes the address itself (the campaign's click tracking
  wraps every link) and `{{ TrackView }}` nothing (the open pixel is added when the campaign
  tracks opens);
- `{{ Date "2006-01-02" }}` becomes `{% now "Y-m-d" %}` (Go's layout as Django's format);
- `{{/* a comment */}}` goes.
"""

from __future__ import annotations

import re

from campaigns.rendering import TemplateError

_ACTION = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.DOTALL)
_ATTRIBUTE = r"[A-Za-z_][A-Za-z0-9_]*"
_SUBSCRIBER_FIELDS = {"Name": "name", "Email": "email", "UUID": "uuid"}
_URLS = {
    "UnsubscribeURL": "unsubscribe_url",
    "ManageURL": "preferences_url",
    "MessageURL": "view_url",
}
# Go's reference time, piece by piece, and Django's format character for each; longest first.
_GO_LAYOUT = [
    ("January", "F"), ("Monday", "l"), ("-07:00", "P"), ("-0700", "O"), ("2006", "Y"),
    ("Jan", "M"), ("Mon", "D"), ("MST", "T"), ("_2", "j"), ("01", "m"), ("02", "d"),
    ("03", "h"), ("04", "i"), ("05", "s"), ("06", "y"), ("15", "H"), ("PM", "A"), ("pm", "a"),
    ("1", "n"), ("2", "j"), ("3", "g"),
]  # fmt: skip
_DJANGO_FORMAT_CHARACTERS = set("aAbBcdDeEfFgGhHiIjlLmMnNoOPrsStTUuwWyYzZ")

# What looks like listmonk's syntax: an action that starts with a dot, a known function,
# `template`, `index` or a comment. Others (`{{ subscriber.name }}`) are this project's own.
_GO_START = re.compile(
    r"^(\.|template\b|index\b|/\*|(?:UnsubscribeURL|ManageURL|MessageURL|OptinURL|TrackLink|"
    r"TrackView|Date|L|Safe|if|range|with|end|else)\b)"
)


def translate(source: str) -> str:
    """The source with listmonk's actions replaced by this project's equivalents."""
    return _ACTION.sub(_translate_action, source)


def _translate_action(match: re.Match) -> str:
    action = match.group(1)
    if not _GO_START.match(action):
        return match.group(0)  # this project's own syntax
    if action.startswith("/*") and action.endswith("*/"):
        return ""
    if re.fullmatch(r'template\s+"content"\s+\.', action):
        return "{{ content }}"
    if action in _URLS:
        return "{{ " + _URLS[action] + " }}"
    if action == "TrackView":
        return ""
    if link := re.fullmatch(r'TrackLink\s+"([^"{}]+)"', action):
        return link.group(1)
    if date := re.fullmatch(r'Date\s+"([^"]*)"', action):
        return '{% now "' + _django_format(date.group(1)) + '" %}'
    if field := re.fullmatch(r"\.Subscriber\.(Name|Email|UUID)", action):
        return "{{ subscriber." + _SUBSCRIBER_FIELDS[field.group(1)] + " }}"
    if attribute := re.fullmatch(rf"\.Subscriber\.Attribs\.({_ATTRIBUTE})", action):
        return "{{ subscriber.attributes." + attribute.group(1) + " }}"
    if attribute := re.fullmatch(rf'index\s+\.Subscriber\.Attribs\s+"({_ATTRIBUTE})"', action):
        return "{{ subscriber.attributes." + attribute.group(1) + " }}"
    if action == ".Campaign.Name":
        return "{{ campaign.name }}"
    if data := re.fullmatch(rf"\.Tx\.Data\.({_ATTRIBUTE})", action):
        return "{{ tx.data." + data.group(1) + " }}"
    if data := re.fullmatch(rf'index\s+\.Tx\.Data\s+"({_ATTRIBUTE})"', action):
        return "{{ tx.data." + data.group(1) + " }}"
    raise TemplateError(
        f"The listmonk template action {{{{ {action} }}}} is not supported here. Supported: "
        '{{ template "content" . }}, {{ .Subscriber.Name }}, {{ .Subscriber.Email }}, '
        "{{ .Subscriber.UUID }}, {{ .Subscriber.Attribs.key }}, {{ .Tx.Data.key }} "
        "(transactional templates), {{ .Campaign.Name }}, {{ UnsubscribeURL }}, "
        '{{ ManageURL }}, {{ MessageURL }}, {{ TrackLink "…" }}, {{ TrackView }}, '
        '{{ Date "…" }} and comments; or write it in this project\'s template language.'
    )


def _django_format(layout: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(layout):
        for piece, character in _GO_LAYOUT:
            if layout.startswith(piece, i):
                out.append(character)
                i += len(piece)
                break
        else:
            literal = layout[i]
            # A letter Django would read as a format character is escaped.
            out.append("\\" + literal if literal in _DJANGO_FORMAT_CHARACTERS else literal)
            i += 1
    return "".join(out).replace('"', '\\"')
