"""What the engine is doing now, as plain data: the status page, `/admin/status.json`,
/metrics and `campaign status` read it. Running and waiting campaigns with their rates and
what holds them back (mailer.reasons), workers, queues, SMTP servers and recent warnings.
The engine writes what this reads through mailer.counters and mailer.events."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from kombu import Connection

from campaigns.models import Campaign
from mailer import backoff, counters, events, heartbeats, leases, throttle
from mailer.models import PerformanceSettings, SmtpServer
from mailer.reasons import (
    admin_url,
    backoff_status,
    explain,
    limited_by,
    live_limits,
    server_hold,
)
from mailer.smtp import ServerConfig
from subscribers import access


def campaign_summary(campaign: Campaign) -> dict[str, Any]:
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        "total": campaign.total,
        "sent": campaign.sent,
        "failed": campaign.failed,
        # Counted as sent, but the server's answer never came (Settings: retry unknown).
        "unknown": counters.unknown(campaign.pk),
        "pending": campaign.pending,
        "rate": round(counters.rate(campaign.pk), 1),
        "waiting_reason": campaign.status_reason or server_hold(campaign),
        "limited_by": limited_by(campaign),
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
    }


def _campaign_status(
    campaign: Campaign,
    *,
    performance: PerformanceSettings,
    limits: dict[str, float],
    running: int,
    worker_slots: int,
) -> dict[str, Any]:
    limit = limited_by(campaign, performance, limits)
    now = counters.rate(campaign.pk)
    own = campaign.effective_rate(performance.default_campaign_rate)
    share = limits.get(throttle.field_campaign(campaign.pk))
    pending = campaign.pending
    return {
        "id": campaign.pk,
        "name": campaign.name,
        "status": campaign.status,
        # A sequence's step ("step", its sequence in `group`) or a campaign.
        "kind": campaign.kind,
        "group": campaign.share_group,
        "url": admin_url("campaigns_campaign_report", campaign.pk),
        "total": campaign.total,
        "sent": campaign.sent,
        "failed": campaign.failed,
        # Counted as sent, but the server's answer never came (Settings: retry unknown).
        "unknown": counters.unknown(campaign.pk),
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


def queue_depths() -> dict[str, int]:
    """Messages waiting in each Celery queue (taken but unfinished tasks are not counted),
    as the broker's transport counts them (for Redis: the lists of every priority step)."""
    # The broker's key prefix, as settings/base.py derives it (derived here again, so that it
    # follows REDIS_KEY_PREFIX wherever that is set).
    options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "global_keyprefix": f"{settings.REDIS_KEY_PREFIX}:celery:",
    }
    with Connection(settings.CELERY_BROKER_URL, transport_options=options) as broker:
        channel: Any = broker.default_channel  # the transport's own channel class
        return {
            queue: channel.queue_declare(queue=queue).message_count
            for queue in settings.MAILER_QUEUES
        }


# --- SMTP servers ---------------------------------------------------------------------------


def smtp_servers() -> list[dict[str, Any]]:
    configs = [(ServerConfig.from_model(s), s.is_enabled) for s in SmtpServer.objects.all()]
    enabled = any(on for _, on in configs)
    configs.append((ServerConfig.default(), not enabled))
    servers = []
    replies = counters.server_replies([config.key for config, _ in configs])
    throttled = backoff.states()
    for (config, in_use), (last_ok, errors) in zip(configs, replies, strict=True):
        servers.append(
            {
                "key": config.key,
                "id": config.server_id,
                "name": config.name,
                "address": f"{config.host}:{config.port}",
                "security": config.security,
                "in_use": in_use,
                "rate_limit": config.rate_limit,
                # The server complained of too much mail: its adaptive rate now.
                "backoff": backoff_status(config, throttled.get(config.key)),
                "last_success": last_ok,
                "recent_errors": errors,
            }
        )
    return servers


# --- The whole picture ----------------------------------------------------------------------


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")


def engine_status(user: Any = None) -> dict[str, Any]:
    """Everything the status page shows, as plain data (also served as JSON). For a `user`,
    only the campaigns (and their warnings) of lists they may see; without one (the
    METRICS_TOKEN), everything."""
    performance = PerformanceSettings.load()
    limits = live_limits()
    online = workers()
    worker_slots = sum(w["concurrency"] for w in online if "send" in w["queues"])
    in_flight = leases.live_owners()
    active = Campaign.objects.filter(
        status__in=[Campaign.Status.RUNNING, Campaign.Status.SCHEDULED, Campaign.Status.PAUSED]
    )
    # Running slots are taken by campaigns; a sequence's steps take none.
    running_count = active.filter(
        status=Campaign.Status.RUNNING, kind=Campaign.Kind.CAMPAIGN
    ).count()
    hidden: set[int] = set()
    if user is not None and access.restricted(user):
        seen = access.scope(user, active, "lists", every=True)
        hidden = set(active.exclude(pk__in=seen.values("pk")).values_list("pk", flat=True))
        active = seen
    campaigns = list(active.select_related(None).order_by("send_at", "pk")[:200])

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
    warnings = [w for w in events.recent(30) if w.get("campaign_id") not in hidden]
    for warning in warnings:
        warning["at_iso"] = _iso(warning["at"])
    for worker in online:
        worker["last_heartbeat_at"] = _iso(worker["last_heartbeat"])
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "url": admin_url("mailer_performancesettings_change", 1),
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
        limits=live_limits(),
        running=Campaign.objects.filter(status=Campaign.Status.RUNNING).count(),
        worker_slots=heartbeats.send_slots_online(),
    )
