"""The template language of campaigns: Django's, cut down to what a message needs, with a
bound on the work one message may take.

Anyone who may edit a campaign or a layout writes these templates, and every recipient's
message is rendered from them on the senders. So they get no tags that reach outside the
message (`include`, `extends`, `load`, `url`, `debug`, `csrf_token`), none that turn escaping
off (`autoescape`, the `safe` filter), and no filter that can blow a short text up
(`ljust:"100000000"`, `stringformat`, `add` on strings). Loops are charged for the source they
repeat: nested loops that would write more than MAX_LOOP_OUTPUT characters stop with a
TemplateError instead of filling a worker's memory, and a rendered part larger than
MAX_RENDERED_CHARACTERS is refused.
"""

from __future__ import annotations

from typing import Any

from django.template import Engine, Library, Node, defaultfilters, defaulttags

# What loops may write in one message (source characters repeated, summed over loops).
MAX_LOOP_OUTPUT = 1_000_000
# The largest HTML or text part a message may have once rendered.
MAX_RENDERED_CHARACTERS = 2_000_000

TAGS = (
    "comment",
    "cycle",
    "firstof",
    "if",
    "ifchanged",
    "now",
    "resetcycle",
    "spaceless",
    "templatetag",
    "verbatim",
    "widthratio",
    "with",
)
FILTERS = (
    "capfirst",
    "cut",
    "date",
    "default",
    "default_if_none",
    "divisibleby",
    "escape",
    "first",
    "iriencode",
    "join",
    "last",
    "length",
    "linebreaks",
    "linebreaksbr",
    "lower",
    "make_list",
    "pluralize",
    "slice",
    "slugify",
    "striptags",
    "time",
    "timesince",
    "timeuntil",
    "title",
    "truncatechars",
    "truncatewords",
    "upper",
    "urlencode",
    "urlize",
    "wordcount",
    "yesno",
)

register = Library()
for _name in TAGS:
    register.tag(_name, defaulttags.register.tags[_name])
for _name in FILTERS:
    register.filters[_name] = defaultfilters.register.filters[_name]


class TemplateError(ValueError):
    """Content that cannot be rendered; the message names the line and the reason."""


class TooMuchOutput(TemplateError):
    """A message whose loops or parts are larger than a message may be."""


@register.filter(is_safe=False)
def add(value: Any, arg: Any) -> Any:
    """Numbers only: adding strings or lists to themselves doubles them at each step."""
    try:
        return int(value) + int(arg)
    except (ValueError, TypeError):
        try:
            return float(value) + float(arg)
        except (ValueError, TypeError):
            return ""


@register.filter(is_safe=True)
def floatformat(value: Any, arg: Any = -1) -> str:
    """Django's, with at most 20 decimal places (it builds the digits it is asked for)."""
    try:
        places = int(str(arg).rstrip("gu") or -1)
    except ValueError:
        places = -1
    if abs(places) > 20:
        return ""
    return defaultfilters.floatformat(value, arg)


class _ChargedSequence:
    """A loop's sequence that charges the render for what the loop will write."""

    def __init__(self, inner: Any, body_length: int) -> None:
        self.inner = inner
        self.body_length = max(body_length, 1)

    def resolve(self, context: Any, ignore_failures: bool = False) -> Any:
        values = self.inner.resolve(context, ignore_failures=ignore_failures)
        if values is None:
            return values
        if not hasattr(values, "__len__"):
            values = list(values)
        state = context.render_context.dicts[0]
        spent = state.get("campaign_loop_output", 0) + len(values) * self.body_length
        state["campaign_loop_output"] = spent
        if spent > MAX_LOOP_OUTPUT:
            raise TooMuchOutput(
                f"The loops of this message would write more than {MAX_LOOP_OUTPUT:,} "
                "characters; loop over fewer items or nest fewer loops."
            )
        return values


def _source_length(nodes: Any) -> int:
    positions = [n.token.position for n in nodes if getattr(n, "token", None) is not None]
    positions = [p for p in positions if p]
    return max(e for _, e in positions) - min(s for s, _ in positions) if positions else 1


@register.tag("for")
def do_for(parser: Any, token: Any) -> Node:
    node: Any = defaulttags.do_for(parser, token)
    node.sequence = _ChargedSequence(node.sequence, _source_length(node.nodelist_loop))
    return node


class CampaignEngine(Engine):
    """An engine with only the tags and filters above: no file loaders, no request
    context. debug=True only makes errors carry their line (and loops their length)."""

    default_builtins = ["campaigns.template_language"]

    def __init__(self, **options: Any) -> None:
        super().__init__(debug=True, loaders=[], **options)


def check_size(rendered: str, what: str) -> str:
    if len(rendered) > MAX_RENDERED_CHARACTERS:
        raise TooMuchOutput(
            f"The {what} of this message is {len(rendered):,} characters once rendered; a "
            f"message may have at most {MAX_RENDERED_CHARACTERS:,}."
        )
    return rendered


def hint(error: str) -> str:
    """What to say after Django's error about a tag or filter campaigns do not have."""
    if "Invalid block tag" in error:
        error = error.split(" Did you forget")[0]
        return f"{error} Campaigns may use these tags: for, {', '.join(TAGS)}."
    if "Invalid filter" in error:
        return f"{error}. Campaigns may use these filters: add, floatformat, {', '.join(FILTERS)}."
    return error
