"""Prepared content: a campaign's subject, body and layout compiled once per process.

Compiling (Markdown, CSS inlining, the text alternative, link rewriting) costs
milliseconds; every batch of a campaign, and its test sends, reuse the result until the
campaign or its layout is edited.
"""

from __future__ import annotations

from typing import Any

from campaigns.models import Campaign
from campaigns.rendering import PreparedContent

# A long-lived worker sees many campaigns over time; the oldest entries go first.
MAX_CACHED = 64

_prepared: dict[int, tuple[Any, PreparedContent]] = {}


def prepared_content(campaign: Campaign) -> PreparedContent:
    """The campaign's compiled content, from this process's cache when it is current."""
    version = (campaign.updated_at, campaign.template.updated_at if campaign.template else None)
    cached = _prepared.get(campaign.pk)
    if cached is not None and cached[0] == version:
        return cached[1]
    content = campaign.content()
    if len(_prepared) >= MAX_CACHED:
        _prepared.pop(next(iter(_prepared)))
    _prepared[campaign.pk] = (version, content)
    return content
