"""A finished campaign's figures from the ledger, read once and kept.

A finished campaign's rows in the ledger do not change any more, but its report read them all
on every view: outcomes, grouped error replies, content versions, recipient domains and sends
per minute, each one pass over the campaign's rows (seconds at ten million). When a campaign
finishes, `mailer.tasks.roll_up_campaign` reads them once into `CampaignRollup`; the report of
a finished campaign reads that row (and reads the ledger itself only if the task has not run
yet, keeping what it found). A campaign still sending is read live.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction

from campaigns.models import Campaign
from mailer import analytics, reports
from mailer.rollup_models import CampaignRollup


def read_ledger(campaign_id: int) -> dict[str, Any]:
    """Everything the report shows from the ledger, in one go."""
    return {
        "outcomes": reports.outcomes(campaign_id),
        "errors": reports.error_replies(campaign_id),
        "versions": reports.sent_by_version(campaign_id),
        "domains": analytics.recipient_domains(campaign_id),
        "minutes": reports.sent_minutes(campaign_id),
    }


def _stored(figures: dict[str, Any]) -> dict[str, Any]:
    return {
        **figures,
        "versions": [[v, n] for v, n in figures["versions"].items()],
        "minutes": [[at.isoformat(), n] for at, n in figures["minutes"]],
    }


def _loaded(stored: dict[str, Any]) -> dict[str, Any]:
    return {
        **stored,
        "versions": {v: n for v, n in stored["versions"]},
        "minutes": [(datetime.fromisoformat(at), n) for at, n in stored["minutes"]],
    }


def roll_up(campaign_id: int) -> bool:
    """Keep a finished campaign's figures (False: not finished, or kept already)."""
    finished = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.FINISHED)
    if not finished.exists() or CampaignRollup.objects.filter(pk=campaign_id).exists():
        return False
    figures = _stored(read_ledger(campaign_id))
    try:
        with transaction.atomic():
            CampaignRollup.objects.create(campaign_id=campaign_id, figures=figures)
    except IntegrityError:
        return False  # another worker kept them first
    return True


def ledger_figures(campaign: Campaign) -> dict[str, Any]:
    """The report's figures from the ledger: kept ones for a finished campaign."""
    if campaign.status != Campaign.Status.FINISHED:
        return read_ledger(campaign.pk)
    kept = CampaignRollup.objects.filter(pk=campaign.pk).values_list("figures", flat=True)
    if stored := kept.first():
        return _loaded(stored)
    roll_up(campaign.pk)
    stored = kept.first()
    return _loaded(stored) if stored else read_ledger(campaign.pk)
