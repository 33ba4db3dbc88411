"""Pasted HTML as it may be shown inside the admin and the API's previews (nh3)."""

from __future__ import annotations

import nh3

_SHOWN_ATTRIBUTES = {
    tag: set(attributes) | {"style", "class", "align", "width", "height", "bgcolor"}
    for tag, attributes in nh3.ALLOWED_ATTRIBUTES.items()
}
_SHOWN_TAGS = set(nh3.ALLOWED_TAGS) | {"html", "head", "body", "center", "font"}
for _tag in _SHOWN_TAGS:
    _SHOWN_ATTRIBUTES.setdefault(_tag, {"style", "class", "align", "width", "height", "bgcolor"})


def sanitise(source: str) -> str:
    """HTML as it may be shown inside the admin: no scripts, event handlers or forms."""
    return nh3.clean(source, tags=_SHOWN_TAGS, attributes=_SHOWN_ATTRIBUTES)
