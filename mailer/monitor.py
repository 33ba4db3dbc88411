"""What the engine is doing now, for the status page, `campaign status` and /metrics: rates,
what holds each campaign back, workers, queues, SMTP servers and recent warnings."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection
from django.urls import reverse

from campaigns.models import Campaign
from campaigns.services import USER_PAUSE
from mailer import events, heartbeats, leases, scheduler, throttle
from mailer.dispatcher import SLOT_REASON
from mailer.models import PerformanceSettings, SmtpServer
from mailer.redis_store import get_redis, key, text
from mailer.smtp import ServerConfig

RATE_WINDOW = 10
# Failures are counted per minute over this many seconds for the auto-pause threshold
# (PerformanceSettings.max_send_errors).
ERROR_WINDOW = 600
_COUNTER_TTL = 120


def note_sent(campaign_id: int, count: int) -> None:
    """Count messages sent this second; rates are read back from these per-second counters."""
    if count <= 0:
        return
    name = key("sent", campaign_id, int(time.time()))
    pipe = get_redis().pipeline(transaction=False)
    pipe.incrby(name, count)
    pipe.expire(name, _COUNTER_TTL)
    pipe.execute()


def note_failed(campaign_id: int, count: int) -> int:
    """Count failed sends; returns the failures of the last ERROR_WINDOW seconds."""
    minute = int(time.time()) // 60
    name = key("failed", campaign_id, minute)
    pipe = get_redis().pipeline(transaction=False)
    pipe.incrby(name, count)
    pipe.expire(name, ERROR_WINDOW + 120)
    pipe.mget(
        [key("failed", campaign_id, m) for m in range(minute - ERROR_WINDOW // 60 + 1, minute + 1)]
    )
    _, _, values = pipe.execute()
    return sum(int(v) for v in values if v)


def rate(campaign_id: int, window: int = RATE_WINDOW) -> float:
    """Messages per second over the last `window` complete seconds."""
    now = int(time.time())
    names = [key("sent", campaign_id, second) for second in range(now - window, now)]
    values = get_redis().mget(names)
    return sum(int(v) for v in values if v) / window


# --- What holds a campaign back -------------------------------------------------------------

# Names the throttle gives its buckets -> what the status calls that limit.
_BUCKETS = {"global": "global_rate", "campaign": "campaign_rate", "server": "smtp_server"}


def _live_limits() -> dict[str, float]:
    raw = get_redis().hgetall(throttle.limits_key())
    return {text(k) or "": float(v) for k, v in raw.items()}


def _own_limit(campaign: Campaign, performance: PerformanceSettings) -> int | None:
    return campaign.rate_limit or performance.default_campaign_rate


def limited_by(
    campaign: Campaign,
    performance: PerformanceSettings | None = None,
    limits: dict[str, float] | None = None,
) -> str:
    """Which knob holds the campaign back now (empty: nothing; it is done or sending freely)."""
    if campaign.status == Campaign.Status.SCHEDULED:
        if campaign.status_reason.startswith(SLOT_REASON):
            return "running_slots"
        return "schedule"
    if campaign.status == Campaign.Status.PAUSED:
        return "paused" if campaign.status_reason in ("", USER_PAUSE) else "errors"
    if campaign.status != Campaign.Status.RUNNING:
        return ""
    performance = performance or PerformanceSettings.load()
    limits = _live_limits() if limits is None else limits
    share = limits.get(throttle.field_campaign(campaign.pk))
    own = _own_limit(campaign, performance)
    # Its campaign bucket holds its share of the global rate; when that share is its own
    # limit, the global bucket is just as full, and which of the two refused last says
    # nothing. What holds it back is then its own limit, otherwise the global rate.
    below_own = share is not None and (own is None or share < own)
    rate_limit = "global_rate" if below_own else "campaign_rate"
    bucket = throttle.limited_by(campaign.pk)
    if bucket in ("global", "campaign"):
        return rate_limit
    if bucket:
        return _BUCKETS.get(bucket, bucket)  # "domain:gmail.com" stays as it is
    hold = scheduler.held(campaign.pk) or ""
    if hold.startswith("SMTP server"):
        return "smtp_server"
    if campaign.pk in scheduler.active_campaigns():
        # Slots rarely run into the rate of a slow campaign (the scheduler paces them to
        # it), so the throttle's last refusal is no guide there: a campaign sending at its
        # rate is held by that rate; below it, by how fast the worker slots go.
        if share and rate(campaign.pk, window=3) >= 0.9 * share:
            return rate_limit
        return "worker_slots"
    return ""


def _server_hold(campaign: Campaign) -> str:
    hold = scheduler.held(campaign.pk) or ""
    return hold if hold.startswith("SMTP server") else ""


def campaign_summary(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "total": campaign.total,
        "sent": campaign.sent,
        "failed": campaign.failed,
        "pending": campaign.pending,
        "rate": round(rate(campaign.pk), 1),
        "waiting_reason": campaign.status_reason or _server_hold(campaign),
        "limited_by": limited_by(campaign),
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }


def _admin_url(name: str, *args: Any) -> str:
    return reverse(f"admin:{name}", args=args)


def explain(
    campaign: Campaign,
    limit: str,
    *,
    performance: PerformanceSettings,
    limits: dict[str, float],
    running: int,
    worker_slots: int,
) -> dict[str, str]:
    """What holds the campaign back, in words, and where to change it."""
    settings_url = _admin_url("mailer_performancesettings_change", 1)
    campaign_url = _admin_url("campaigns_campaign_change", campaign.pk)
    share = limits.get(throttle.field_campaign(campaign.pk))
    if limit == "running_slots":
        return {
            "text": f"Waiting for a running slot: {running} of "
            f"{performance.max_running_campaigns} campaigns are running. Raise "
            "“max running campaigns” under Settings → Performance, or pause a running one.",
            "fix": settings_url,
        }
    if limit == "schedule":
        when = f" ({campaign.send_at:%Y-%m-%d %H:%M %Z})" if campaign.send_at else ""
        return {
            "text": f"Scheduled for later{when}; it starts on its own then. Change “send at” "
            "on the campaign to start it sooner.",
            "fix": campaign_url,
        }
    if limit == "paused":
        return {"text": "Paused by a user. Resume it to continue.", "fix": campaign_url}
    if limit == "errors":
        return {
            "text": f"{campaign.status_reason[:1].upper()}{campaign.status_reason[1:]}. Fix the "
            "cause, then resume it; it continues where it stopped.",
            "fix": campaign_url,
        }
    if limit == "campaign_rate":
        own = _own_limit(campaign, performance)
        source = "its rate limit" if campaign.rate_limit else "the default campaign rate"
        return {
            "text": f"Sending at {source} ({own}/s). Raise it on the campaign"
            + ("" if campaign.rate_limit else " or under Settings → Performance")
            + " to go faster.",
            "fix": campaign_url if campaign.rate_limit else settings_url,
        }
    if limit == "global_rate":
        return {
            "text": f"Sending at its share of the global rate ({share or 0:g}/s of "
            f"{performance.message_rate}/s, shared by weight between {running} running "
            "campaigns). Raise the global message rate under Settings → Performance.",
            "fix": settings_url,
        }
    if limit == "smtp_server":
        hold = _server_hold(campaign)
        return {
            "text": (hold + ".")
            if hold
            else "Sending as fast as its SMTP server's rate limit allows (shared with every "
            "campaign using that server). Raise the server's rate limit if the provider allows.",
            "fix": _admin_url("mailer_smtpserver_changelist"),
        }
    if limit.startswith("domain:"):
        domain = limit.partition(":")[2]
        return {
            "text": f"Mail to {domain} goes at that domain's throttle "
            f"({int(limits.get(throttle.field_domain(domain), 0))}/s); other recipients are "
            "not held back by it.",
            "fix": _admin_url("mailer_domainthrottle_changelist"),
        }
    if limit == "worker_slots":
        return {
            "text": f"No rate limit holds it back: it sends as fast as its share of the "
            f"{worker_slots} worker slots allows. Add sender workers (scale `sender`, or raise "
            "SENDER_CONCURRENCY) to go faster.",
            "fix": settings_url,
        }
    if campaign.status == Campaign.Status.RUNNING:
        return {
            "text": "Nothing due right now: the remaining recipients are in flight or wait "
            "for a retry after a temporary failure.",
            "fix": campaign_url,
        }
    return {"text": "", "fix": campaign_url}


def _campaign_status(
    campaign: Campaign,
    *,
    performance: PerformanceSettings,
    limits: dict[str, float],
    running: int,
    worker_slots: int,
) -> dict[str, Any]:
    limit = limited_by(campaign, performance, limits)
    now = rate(campaign.pk)
    own = _own_limit(campaign, performance)
    share = limits.get(throttle.field_campaign(campaign.pk))
    pending = campaign.pending
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "url": _admin_url("campaigns_campaign_report", campaign.pk),
        "total": campaign.total,
        "sent": campaign.sent,
        "failed": campaign.failed,
        "pending": pending,
        "progress": round(campaign.progress, 4),
        "rate": round(now, 1),
        # The rate it may send at now: its share of the global rate within its own limit.
        "rate_limit": share if share else own,
        "own_rate_limit": own,
        "weight": campaign.weight,
        "eta_seconds": round(pending / now) if now > 0 and pending else None,
        "limited_by": limit,
        "explanation": explain(
            campaign,
            limit,
            performance=performance,
            limits=limits,
            running=running,
            worker_slots=worker_slots,
        ),
        "status_reason": campaign.status_reason,
        "send_at": campaign.send_at.isoformat() if campaign.send_at else None,
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
    }


# --- Workers and queues -----------------------------------------------------------------------


def workers() -> list[dict[str, Any]]:
    """Workers whose heartbeat is live, each with the batches its processes run now."""
    owners = leases.live_owners()
    running_on: dict[str, int] = {}
    for owner in owners.values():
        if owner:
            running_on[owner] = running_on.get(owner, 0) + 1
    online = []
    for worker in heartbeats.workers_online():
        processes = [f"{worker['host']}:{pid}" for pid in [worker["pid"], *worker["children"]]]
        online.append(
            {
                "hostname": worker["hostname"],
                "host": worker["host"],
                "pid": worker["pid"],
                "pool": worker["pool"],
                "concurrency": worker["concurrency"],
                "queues": worker["queues"],
                "batches_running": sum(running_on.get(p, 0) for p in processes),
                "rss_bytes": worker.get("rss_bytes"),
                "cpu_percent": worker.get("cpu_percent"),
                "last_heartbeat": worker["seen_at"],
                "heartbeat_age": round(max(time.time() - worker["seen_at"], 0.0), 1),
                "started_at": worker["started_at"],
            }
        )
    return online


# kombu's Redis transport keeps one list per queue and priority step; priority 0 is the bare
# name (kombu.transport.redis: PRIORITY_STEPS and the "\x06\x16" separator).
_PRIORITY_STEPS = (0, 3, 6, 9)
_PRIORITY_SEPARATOR = "\x06\x16"


def queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue (taken but unfinished tasks are not counted)."""
    # The broker's key prefix, as settings/base.py derives it (read here from the prefix, so
    # that it follows REDIS_KEY_PREFIX wherever that is set).
    prefix = f"{settings.REDIS_KEY_PREFIX}:celery:"
    names = {
        queue: [
            f"{prefix}{queue}{_PRIORITY_SEPARATOR}{step}" if step else f"{prefix}{queue}"
            for step in _PRIORITY_STEPS
        ]
        for queue in settings.MAILER_QUEUES
    }
    pipe = get_redis().pipeline(transaction=False)
    for keys in names.values():
        for name in keys:
            pipe.llen(name)
    lengths = iter(pipe.execute())
    return {queue: sum(next(lengths) for _ in keys) for queue, keys in names.items()}


# --- SMTP servers ---------------------------------------------------------------------------

SERVER_ERRORS_KEPT = 20


# When this process last wrote each server's last success: once a second is enough for the
# status page, and this runs after every chunk.
_last_success_noted: dict[str, float] = {}


def note_server_replies(server_key: str, *, sent: int, errors: list[str]) -> None:
    """Remember a server's last success and its recent error replies (one round trip)."""
    now = time.time()
    note_success = sent and now - _last_success_noted.get(server_key, 0.0) >= 1.0
    if not note_success and not errors:
        return
    pipe = get_redis().pipeline(transaction=False)
    if note_success:
        _last_success_noted[server_key] = now
        pipe.set(key("smtp-ok", server_key), now, ex=7 * 86400)
    if errors:
        name = key("smtp-errors", server_key)
        pipe.lpush(name, *[json.dumps({"at": now, "reply": e}) for e in errors[-5:]])
        pipe.ltrim(name, 0, SERVER_ERRORS_KEPT - 1)
        pipe.expire(name, 7 * 86400)
    pipe.execute()


def smtp_servers() -> list[dict[str, Any]]:
    configs = [(ServerConfig.from_model(s), s.is_enabled) for s in SmtpServer.objects.all()]
    enabled = any(on for _, on in configs)
    configs.append((ServerConfig.default(), not enabled))
    pipe = get_redis().pipeline(transaction=False)
    for config, _ in configs:
        pipe.get(key("smtp-ok", config.key))
        pipe.lrange(key("smtp-errors", config.key), 0, 4)
    replies = iter(pipe.execute())
    servers = []
    for config, in_use in configs:
        last_ok = next(replies)
        errors = [json.loads(e) for e in next(replies)]
        servers.append(
            {
                "key": config.key,
                "id": config.server_id,
                "name": config.name,
                "address": f"{config.host}:{config.port}",
                "security": config.security,
                "in_use": in_use,
                "rate_limit": config.rate_limit,
                "last_success": float(last_ok) if last_ok else None,
                "recent_errors": errors,
            }
        )
    return servers


# --- The whole picture ----------------------------------------------------------------------


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def status() -> dict[str, Any]:
    """Everything the status page shows, as plain data (also served as JSON)."""
    performance = PerformanceSettings.load()
    limits = _live_limits()
    online = workers()
    worker_slots = sum(w["concurrency"] for w in online if "send" in w["queues"])
    in_flight = leases.live_owners()
    shown = (
        Campaign.objects.filter(
            status__in=[Campaign.Status.RUNNING, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED]
        )
        .select_related(None)
        .order_by("send_at", "pk")[:200]
    )
    campaigns = list(shown)
    running_count = sum(1 for c in campaigns if c.status == Campaign.Status.RUNNING)

    def describe(campaign: Campaign) -> dict[str, Any]:
        return _campaign_status(
            campaign,
            performance=performance,
            limits=limits,
            running=running_count,
            worker_slots=worker_slots,
        )

    servers = smtp_servers()
    for server in servers:
        server["last_success_at"] = _iso(server["last_success"])
        for error in server["recent_errors"]:
            error["at_iso"] = _iso(error["at"])
    warnings = events.recent(30)
    for warning in warnings:
        warning["at_iso"] = _iso(warning["at"])
    for worker in online:
        worker["last_heartbeat_at"] = _iso(worker["last_heartbeat"])
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "url": _admin_url("mailer_performancesettings_change", 1),
            "max_running_campaigns": performance.max_running_campaigns,
            "message_rate": performance.message_rate,
            "default_campaign_rate": performance.default_campaign_rate,
            "batch_size": performance.batch_size,
            "max_send_errors": performance.max_send_errors,
        },
        "capacity": {
            "running_campaigns": running_count,
            "max_running_campaigns": performance.max_running_campaigns,
            "worker_slots": worker_slots,
            "batches_running": sum(1 for owner in in_flight.values() if owner),
            "batches_queued": sum(1 for owner in in_flight.values() if not owner),
            "db_pool_max_size": settings.DB_POOL_MAX_SIZE,
        },
        "running": [describe(c) for c in campaigns if c.status == Campaign.Status.RUNNING],
        "waiting": [describe(c) for c in campaigns if c.status != Campaign.Status.RUNNING],
        "workers": online,
        "queues": queue_depths(),
        "smtp_servers": servers,
        "warnings": warnings,
    }


# --- One campaign in detail -------------------------------------------------------------------


def campaign_status(campaign: Campaign) -> dict[str, Any]:
    """The status page's entry for one campaign."""
    return _campaign_status(
        campaign,
        performance=PerformanceSettings.load(),
        limits=_live_limits(),
        running=Campaign.objects.filter(status=Campaign.Status.RUNNING).count(),
        worker_slots=heartbeats.send_slots_online(),
    )


def campaign_minutes(campaign_id: int, minutes: int = 120) -> list[tuple[datetime, int]]:
    """Messages sent per minute over the campaign's last `minutes` minutes of sending."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH per_minute AS (
                SELECT date_trunc('minute', sent_at) AS minute, count(*) AS sent
                FROM mailer_delivery
                WHERE campaign_id = %(campaign)s AND status = 'sent' AND sent_at IS NOT NULL
                GROUP BY 1
            )
            SELECT minute, sent FROM per_minute ORDER BY minute DESC LIMIT %(minutes)s
            """,
            {"campaign": campaign_id, "minutes": minutes},
        )
        rows = cursor.fetchall()
    return list(reversed(rows))


def campaign_outcomes(campaign_id: int) -> dict[str, int]:
    """Recipients by outcome: sent, failed, waiting to retry, pending, in flight."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT CASE WHEN status = 'pending' AND attempts > 0 THEN 'retrying' ELSE status END,
                   count(*)
            FROM mailer_delivery WHERE campaign_id = %(campaign)s GROUP BY 1
            """,
            {"campaign": campaign_id},
        )
        counts = dict(cursor.fetchall())
    return {
        name: counts.get(name, 0) for name in ("sent", "failed", "retrying", "pending", "sending")
    }


def campaign_error_replies(campaign_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """Error replies grouped (the same reply to many recipients is one line with a count)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT reply, status, count(*) AS recipients
            FROM mailer_delivery
            WHERE campaign_id = %(campaign)s
              AND (status = 'failed' OR (status = 'pending' AND attempts > 0))
            GROUP BY reply, status ORDER BY recipients DESC, reply LIMIT %(limit)s
            """,
            {"campaign": campaign_id, "limit": limit},
        )
        rows = cursor.fetchall()
    return [
        {"reply": reply, "outcome": "failed" if s == "failed" else "retrying", "recipients": n}
        for reply, s, n in rows
    ]
