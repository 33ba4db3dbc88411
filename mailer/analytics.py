"""The numbers behind the charts: one campaign over time and by recipient domain, campaigns
compared, and lists' growth. Each function returns plain rows; the pages draw them
(workbench, the campaign report) and offer the same rows as a table and as CSV."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db import connection
from django.utils import timezone

from mailer.ledger import DELIVERY

# The widest a timeline gets before its buckets grow (minute, then hour, then day).
MAX_POINTS = 240
BUCKETS = (("minute", 60), ("hour", 3600), ("day", 86400))


def _bucket(start: datetime, end: datetime) -> str:
    span = max((end - start).total_seconds(), 1)
    for name, seconds in BUCKETS:
        if span / seconds <= MAX_POINTS:
            return name
    return "day"


def _truncated(at: datetime, bucket: str) -> datetime:
    if bucket == "day":
        return at.replace(hour=0, minute=0, second=0, microsecond=0)
    if bucket == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(second=0, microsecond=0)


def campaign_timeline(campaign: Any, sent_minutes: list[tuple[datetime, int]]) -> dict[str, Any]:
    """Messages sent (from the ledger's counts per minute, mailer.rollups), opens and clicks
    per minute, hour or day since the campaign started."""
    started_at = campaign.started_at
    if started_at is None:
        return {"bucket": "minute", "rows": []}
    bucket = _bucket(started_at, timezone.now())
    sent: dict[datetime, int] = {}
    for minute, n in sent_minutes:
        at = _truncated(minute.astimezone(UTC), bucket)
        sent[at] = sent.get(at, 0) + n
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH opens AS (
                SELECT date_trunc(%(bucket)s, at) AS at, count(*) AS n FROM campaigns_open
                WHERE campaign_id = %(campaign)s GROUP BY 1
            ), clicks AS (
                SELECT date_trunc(%(bucket)s, at) AS at, count(*) AS n FROM campaigns_click
                WHERE campaign_id = %(campaign)s GROUP BY 1
            )
            SELECT at, coalesce(opens.n, 0), coalesce(clicks.n, 0)
            FROM opens FULL JOIN clicks USING (at)
            """,
            {"bucket": bucket, "campaign": campaign.pk},
        )
        engaged = {at: (opens, clicks) for at, opens, clicks in cursor.fetchall()}
    moments = sorted(set(sent) | set(engaged))[-MAX_POINTS:]
    return {
        "bucket": bucket,
        "rows": [
            {
                "at": at,
                "sent": sent.get(at, 0),
                "opens": engaged.get(at, (0, 0))[0],
                "clicks": engaged.get(at, (0, 0))[1],
            }
            for at in moments
        ],
    }


def recipient_domains(campaign_id: int, top: int = 10) -> list[dict[str, Any]]:
    """The campaign's recipients by domain: the largest few, with their outcomes."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT split_part(email, '@', 2) AS domain, count(*),
                   count(*) FILTER (WHERE status = 'sent'),
                   count(*) FILTER (WHERE status = 'failed')
            FROM {DELIVERY} WHERE campaign_id = %(campaign)s
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT %(top)s
            """,  # noqa: S608
            {"campaign": campaign_id, "top": top},
        )
        return [
            {"domain": domain, "recipients": n, "sent": sent, "failed": failed}
            for domain, n, sent, failed in cursor.fetchall()
        ]


def _rate(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0.0


def compare_campaigns(campaign_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """Per campaign: sent, and the share of it that opened, clicked, bounced, unsubscribed
    (distinct subscribers, in per cent of those sent to)."""
    ids = list(campaign_ids)
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.id, c.sent,
                (SELECT count(DISTINCT subscriber_id) FROM campaigns_open o
                  WHERE o.campaign_id = c.id),
                (SELECT count(DISTINCT subscriber_id) FROM campaigns_click k
                  WHERE k.campaign_id = c.id),
                (SELECT count(*) FROM mailer_bounce b
                  WHERE b.campaign_id = c.id AND b.kind IN ('hard', 'soft')),
                (SELECT count(*) FROM mailer_bounce b
                  WHERE b.campaign_id = c.id AND b.kind = 'complaint'),
                (SELECT count(*) FROM campaigns_unsubscribe u WHERE u.campaign_id = c.id)
            FROM campaigns_campaign c WHERE c.id = ANY(%s)
            """,
            [ids],
        )
        rows = cursor.fetchall()
    return {
        pk: {
            "sent": sent,
            "opened": opened,
            "clicked": clicked,
            "bounced": bounced,
            "complaints": complaints,
            "unsubscribed": unsubscribed,
            "open_rate": _rate(opened, sent),
            "click_rate": _rate(clicked, sent),
            "bounce_rate": _rate(bounced, sent),
            "unsubscribe_rate": _rate(unsubscribed, sent),
        }
        for pk, sent, opened, clicked, bounced, complaints, unsubscribed in rows
    }


def list_growth(list_ids: list[int], days: int = 30) -> list[dict[str, Any]]:
    """Per day over the last `days` days, on these lists: subscriptions made, subscriptions
    that ended unsubscribed (by the day of that change) and bounces of their subscribers.
    The first two from the hourly counts the subscriptions' triggers keep (ListActivity)."""
    since = timezone.localdate() - timedelta(days=days - 1)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH days AS (
                SELECT generate_series(%(since)s::date, %(today)s::date, '1 day')::date AS day
            ), activity AS (
                SELECT (hour AT TIME ZONE %(zone)s)::date AS day,
                       sum(subscribed)::bigint AS joined, sum(unsubscribed)::bigint AS left_
                FROM subscribers_listactivity
                WHERE list_id = ANY(%(lists)s) AND hour >= %(since)s::date
                GROUP BY 1
            ), joined AS (
                SELECT day, joined AS n FROM activity
            ), left_ AS (
                SELECT day, left_ AS n FROM activity
            ), bounced AS (
                SELECT (b.at AT TIME ZONE %(zone)s)::date AS day, count(DISTINCT b.id) AS n
                FROM mailer_bounce b JOIN subscribers_subscription s
                  ON s.subscriber_id = b.subscriber_id AND s.mailing_list_id = ANY(%(lists)s)
                WHERE b.at >= %(since)s::date AND b.kind IN ('hard', 'soft')
                GROUP BY 1
            )
            SELECT days.day, coalesce(joined.n, 0), coalesce(left_.n, 0), coalesce(bounced.n, 0)
            FROM days LEFT JOIN joined USING (day) LEFT JOIN left_ USING (day)
                 LEFT JOIN bounced USING (day)
            ORDER BY days.day
            """,
            {
                "since": since,
                "today": timezone.localdate(),
                "zone": timezone.get_current_timezone_name(),
                "lists": list_ids,
            },
        )
        return [
            {"day": day, "subscribed": joined, "unsubscribed": left, "bounced": bounced}
            for day, joined, left, bounced in cursor.fetchall()
        ]


def day_label(value: date | datetime) -> str:
    if not isinstance(value, datetime):
        return value.isoformat()
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M")


def short_labels(values: list, bucket: str) -> list[str]:
    """Axis labels: the time alone within a day, the date alone for days."""
    if bucket == "day" or not values or not isinstance(values[0], datetime):
        return [v.strftime("%d %b") for v in values]
    local = [timezone.localtime(v) for v in values]
    one_day = local[0].date() == local[-1].date()
    return [v.strftime("%H:%M" if one_day else "%d %b %H:%M") for v in local]
