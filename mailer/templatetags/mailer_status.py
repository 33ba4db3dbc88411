"""Small formatting helpers for the status and campaign pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """12 s, 4 min, 2 h 5 min; a dash for unknown."""
    if seconds is None:
        return "—"
    seconds = int(seconds)
    if seconds < 90:
        return f"{seconds} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


@register.filter
def rate(value: float | None) -> str:
    """Messages per second: 25/s, 0.5/s; "no limit" for None."""
    if value is None:
        return "no limit"
    return f"{value:.1f}".removesuffix(".0") + "/s"


@register.filter
def percent(value: float) -> int:
    return round(value * 100)
