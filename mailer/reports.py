"""What the campaign report reads from the ledger: messages in each minute, recipients by
outcome, grouped error replies, and who got which content version."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Count

from campaigns.models import Campaign, Click, Open
from mailer import folding
from mailer.ledger import DELIVERY
from mailer.models import Delivery


def sent_minutes(campaign_id: int) -> list[tuple[datetime, int]]:
    """Messages sent in each minute of the campaign, oldest first."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT date_trunc('minute', sent_at), count(*) FROM {DELIVERY}
            WHERE campaign_id = %(campaign)s AND status = 'sent' AND sent_at IS NOT NULL
            GROUP BY 1 ORDER BY 1
            """,  # noqa: S608
            {"campaign": campaign_id},
        )
        return cursor.fetchall()


def outcomes(campaign_id: int) -> dict[str, int]:
    """Recipients by outcome: sent, failed, waiting to retry, pending, in flight."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT CASE WHEN status = 'pending' AND attempts > 0 THEN 'retrying' ELSE status END,
                   count(*)
            FROM {DELIVERY} WHERE campaign_id = %(campaign)s GROUP BY 1
            """,  # noqa: S608
            {"campaign": campaign_id},
        )
        counts = dict(cursor.fetchall())
    return {
        name: counts.get(name, 0) for name in ("sent", "failed", "retrying", "pending", "sending")
    }


def error_replies(campaign_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """Error replies grouped (the same reply to many recipients is one line with a count)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT reply, status, count(*) AS recipients
            FROM {DELIVERY}
            WHERE campaign_id = %(campaign)s
              AND (status = 'failed' OR (status = 'pending' AND attempts > 0))
            GROUP BY reply, status ORDER BY recipients DESC, reply LIMIT %(limit)s
            """,  # noqa: S608
            {"campaign": campaign_id, "limit": limit},
        )
        rows = cursor.fetchall()
    return [
        {"reply": reply, "outcome": "failed" if s == "failed" else "retrying", "recipients": n}
        for reply, s, n in rows
    ]


def sent_by_version(campaign_id: int) -> dict[int | None, int]:
    """How many messages each content version of the campaign went out as."""
    rows = (
        Delivery.objects.filter(campaign_id=campaign_id, status=Delivery.Status.SENT)
        .values_list("content_version")
        .annotate(n=Count("id"))
    )
    return dict(rows.values_list("content_version", "n"))


def history_of(subscriber_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The subscriber's last campaign messages, newest first, with whether they opened or
    clicked each (the ledger's subscriber index and the folded blocks' subscriber ranges,
    then the engagement tables' per-campaign unique indexes: a few index lookups whatever
    the ledger's size)."""
    rows = folding.ledger_of(subscriber_id)[::-1][:limit]
    campaigns = {d.campaign_id for d in rows}
    names = dict(Campaign.objects.filter(pk__in=campaigns).values_list("pk", "name"))
    opened = set(
        Open.objects.filter(campaign_id__in=campaigns, subscriber_id=subscriber_id).values_list(
            "campaign_id", flat=True
        )
    )
    clicked = set(
        Click.objects.filter(campaign_id__in=campaigns, subscriber_id=subscriber_id).values_list(
            "campaign_id", flat=True
        )
    )
    return [
        {
            "campaign_id": d.campaign_id,
            "campaign": names.get(d.campaign_id, ""),
            "status": d.get_status_display(),
            "sent_at": d.sent_at,
            "reply": d.reply,
            "opened": d.campaign_id in opened,
            "clicked": d.campaign_id in clicked,
        }
        for d in rows
    ]
