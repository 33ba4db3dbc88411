"""A sequence's report: per step of each version in use, how many entered it, wait at it,
were sent its message, opened and clicked it, and left the sequence there."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from automations.models import Enrollment, Sequence
from campaigns.models import Click, Open


def per_step(sequence: Sequence) -> list[dict[str, Any]]:
    waiting = {
        (v, p): n
        for v, p, n in Enrollment.objects.filter(sequence=sequence, state="active")
        .values_list("version", "position")
        .annotate(n=Count("id"))
        .values_list("version", "position", "n")
    }
    in_use = {v for v, _ in waiting} | {sequence.version}
    steps = list(
        sequence.steps.filter(version__in=in_use)
        .select_related("campaign", "mailing_list")
        .order_by("-version", "position")
    )
    campaigns = [s.campaign_id for s in steps if s.campaign_id]
    opens = _distinct_people(Open, campaigns)
    clicks = _distinct_people(Click, campaigns)
    versions: dict[int, list[dict[str, Any]]] = {}
    for step in steps:
        versions.setdefault(step.version, []).append(
            {
                "step": step,
                "entered": step.entered,
                "waiting": waiting.get((step.version, step.position), 0),
                "sent": step.campaign.sent if step.campaign else None,
                "opened": opens.get(step.campaign_id, 0) if step.campaign_id else None,
                "clicked": clicks.get(step.campaign_id, 0) if step.campaign_id else None,
                "exited": step.exited,
            }
        )
    return [
        {"version": v, "current": v == sequence.version, "steps": rows}
        for v, rows in versions.items()
    ]


def _distinct_people(model, campaign_ids: list[int]) -> dict[int, int]:
    return dict(
        model.objects.filter(campaign_id__in=campaign_ids)
        .values("campaign_id")
        .annotate(n=Count("subscriber_id", distinct=True))
        .values_list("campaign_id", "n")
    )


def summary(sequence: Sequence) -> dict[str, int]:
    counts = dict(
        Enrollment.objects.filter(sequence=sequence)
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return {state: counts.get(state, 0) for state in ("active", "done", "exited")}
