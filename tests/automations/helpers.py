"""Sequences built as the admin builds them, for the tests."""

from __future__ import annotations

from typing import Any

from automations import services
from automations.models import Sequence, Step
from subscribers.models import MailingList


def sequence_with(
    steps: list[dict[str, Any]], *, lists: list[MailingList], **fields: Any
) -> Sequence:
    """A sequence whose steps are given as dicts: {"kind": "send", "subject": …, "body": …}
    or any Step field."""
    sequence = Sequence.objects.create(name=fields.pop("name", "Welcome"), **fields)
    sequence.lists.set(lists)
    for position, spec in enumerate(steps, start=1):
        spec = dict(spec)
        subject, body = spec.pop("subject", None), spec.pop("body", None)
        step = Step(sequence=sequence, version=sequence.version, position=position, **spec)
        if step.kind == Step.Kind.SEND:
            step.campaign = services.step_message(
                sequence,
                position=position,
                subject=subject or f"Step {position} for {{{{ subscriber.name }}}}",
                body=body or f"<p>Step {position}</p>",
            )
        step.full_clean(exclude=["sequence", "campaign"])
        step.save()
    return sequence
