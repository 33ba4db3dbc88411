"""Why a campaign waits or goes no faster: which knob holds it back now (`limited_by`) and
what that means in words, with where to change it (`explain`). The status page, status.json,
/metrics and `campaign status` all say it the same way."""

from __future__ import annotations

from typing import Any

from django.urls import reverse
from django.utils.translation import gettext as _

from campaigns.models import Campaign, Limit
from mailer import backoff, counters, scheduler, throttle
from mailer.models import PerformanceSettings, SmtpServer
from mailer.smtp import ServerConfig
from settings.redis import get_redis, text

# Names the throttle gives its buckets -> what the status calls that limit.
_BUCKETS = {
    "global": Limit.GLOBAL_RATE,
    "campaign": Limit.CAMPAIGN_RATE,
    "server": Limit.SMTP_SERVER,
}


def live_limits() -> dict[str, float]:
    raw = get_redis().hgetall(throttle.limits_key())
    return {text(k) or "": float(v) for k, v in raw.items()}


def limited_by(
    campaign: Campaign,
    performance: PerformanceSettings | None = None,
    limits: dict[str, float] | None = None,
) -> str:
    """Which knob holds the campaign back now (empty: nothing; it is done or sending freely)."""
    if campaign.status != Campaign.Status.RUNNING:
        return campaign.waiting_for()
    performance = performance or PerformanceSettings.load()
    limits = live_limits() if limits is None else limits
    share = limits.get(throttle.field_campaign(campaign.pk))
    own = campaign.effective_rate(performance.default_campaign_rate)
    # Its campaign bucket holds its share of the global rate; when that share is its own
    # limit, the global bucket is just as full, and which of the two refused last says
    # nothing. What holds it back is then its own limit, otherwise the global rate.
    below_own = share is not None and (own is None or share < own)
    rate_limit = Limit.GLOBAL_RATE if below_own else Limit.CAMPAIGN_RATE
    bucket = throttle.limited_by(campaign.pk)
    if bucket in ("global", "campaign"):
        return rate_limit
    if bucket:
        return _BUCKETS.get(bucket, bucket)  # "domain:gmail.com" stays as it is
    hold = scheduler.held(campaign.pk) or ""
    if hold.startswith("SMTP server"):
        return Limit.SMTP_SERVER
    if campaign.pk in scheduler.active_campaigns():
        # Slots rarely run into the rate of a slow campaign (the scheduler paces them to
        # it), so the throttle's last refusal is no guide there: a campaign sending at its
        # rate is held by that rate; below it, by how fast the worker slots go.
        if share and counters.rate(campaign.pk, window=3) >= 0.9 * share:
            return rate_limit
        return Limit.WORKER_SLOTS
    if campaign.kind == Campaign.Kind.STEP:
        return Limit.NEXT_SUBSCRIBERS
    return Limit.NONE


def backoff_status(server: ServerConfig, state: dict[str, Any] | None) -> dict[str, Any] | None:
    """A server in adaptive back-off (mailer.backoff), in words: the rate it may take now,
    of what, and what it said."""
    if not state:
        return None
    rate = state["rate"]
    of = (
        f"{server.rate_limit}/s"
        if server.rate_limit
        else _("the %(ceiling).0f/s it took") % {"ceiling": state["ceiling"]}
    )
    return {
        "rate": round(rate, 1),
        "ceiling": round(state["ceiling"], 1),
        "reply": state["reply"],
        "since": state["since"],
        "text": _(
            "Throttled by the server: %(rate).0f/s of %(of)s (it answered “%(reply)s”); the "
            "rate comes back by %(step).1f/s each second while the server accepts."
        )
        % {
            "rate": rate,
            "of": of,
            "reply": state["reply"],
            "step": backoff.STEP * state["ceiling"],
        },
    }


def server_backoff(campaign: Campaign) -> dict[str, Any] | None:
    """The back-off of the server the campaign sends through, if it is in one."""
    states = backoff.states()
    if not states:
        return None
    servers = SmtpServer.objects.filter(is_enabled=True)
    if campaign.smtp_server_id is not None:
        servers = SmtpServer.objects.filter(pk=campaign.smtp_server_id)
    configs = [ServerConfig.from_model(s) for s in servers] or [ServerConfig.default()]
    for server in configs:
        if server.key in states:
            return backoff_status(server, states[server.key])
    return None


def server_hold(campaign: Campaign) -> str:
    hold = scheduler.held(campaign.pk) or ""
    return hold if hold.startswith("SMTP server") else ""


def admin_url(name: str, *args: Any) -> str:
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
    settings_url = admin_url("mailer_performancesettings_change", 1)
    campaign_url = admin_url("campaigns_campaign_change", campaign.pk)
    share = limits.get(throttle.field_campaign(campaign.pk))
    if limit == Limit.RUNNING_SLOTS:
        return {
            "text": _(
                "Waiting for a running slot: %(running)s of %(max)s campaigns are running. "
                "Raise “max running campaigns” under Settings → Performance, or pause a "
                "running one."
            )
            % {"running": running, "max": performance.max_running_campaigns},
            "fix": settings_url,
        }
    if limit == Limit.SCHEDULE:
        when = f" ({campaign.send_at:%Y-%m-%d %H:%M %Z})" if campaign.send_at else ""
        return {
            "text": _(
                "Scheduled for later%(when)s; it starts on its own then. Change “send at” on "
                "the campaign to start it sooner."
            )
            % {"when": when},
            "fix": campaign_url,
        }
    if limit == Limit.PAUSED:
        return {"text": _("Paused by a user. Resume it to continue."), "fix": campaign_url}
    if limit == Limit.ERRORS:
        reason = f"{campaign.status_reason[:1].upper()}{campaign.status_reason[1:]}"
        return {
            "text": _("%(reason)s. Fix the cause, then resume it; it continues where it stopped.")
            % {"reason": reason},
            "fix": campaign_url,
        }
    if limit == Limit.CAMPAIGN_RATE:
        own = campaign.effective_rate(performance.default_campaign_rate)
        text = (
            _("Sending at its rate limit (%(rate)s/s). Raise it on the campaign to go faster.")
            if campaign.rate_limit
            else _(
                "Sending at the default campaign rate (%(rate)s/s). Raise it on the campaign "
                "or under Settings → Performance to go faster."
            )
        )
        return {
            "text": text % {"rate": own},
            "fix": campaign_url if campaign.rate_limit else settings_url,
        }
    if limit == Limit.GLOBAL_RATE:
        return {
            "text": _(
                "Sending at its share of the global rate (%(share)s/s of %(rate)s/s, shared by "
                "weight between %(running)s running campaigns). Raise the global message rate "
                "under Settings → Performance."
            )
            % {"share": f"{share or 0:g}", "rate": performance.message_rate, "running": running},
            "fix": settings_url,
        }
    if limit == Limit.SMTP_SERVER:
        hold = server_hold(campaign)
        throttled = server_backoff(campaign)
        if throttled and not hold:
            hold = throttled["text"].removesuffix(".")
        return {
            "text": (hold + ".")
            if hold
            else _(
                "Sending as fast as its SMTP server's rate limit allows (shared with every "
                "campaign using that server). Raise the server's rate limit if the provider "
                "allows."
            ),
            "fix": admin_url("mailer_smtpserver_changelist"),
        }
    if limit.startswith("domain:"):
        domain = limit.partition(":")[2]
        return {
            "text": _(
                "Mail to %(domain)s goes at that domain's throttle (%(rate)s/s); other "
                "recipients are not held back by it."
            )
            % {"domain": domain, "rate": int(limits.get(throttle.field_domain(domain), 0))},
            "fix": admin_url("mailer_domainthrottle_changelist"),
        }
    if limit == Limit.WORKER_SLOTS:
        return {
            "text": _(
                "No rate limit holds it back: it sends as fast as its share of the %(slots)s "
                "worker slots allows. Add sender workers (scale `sender`, or raise "
                "SENDER_CONCURRENCY) to go faster."
            )
            % {"slots": worker_slots},
            "fix": settings_url,
        }
    if limit == Limit.NEXT_SUBSCRIBERS:
        return {
            "text": _(
                "The message of a sequence's step: it sends as subscribers reach the step, and "
                "waits for them meanwhile."
            ),
            "fix": campaign_url,
        }
    if campaign.status == Campaign.Status.RUNNING:
        return {
            "text": _(
                "Nothing due right now: the remaining recipients are in flight or wait for a "
                "retry after a temporary failure."
            ),
            "fix": campaign_url,
        }
    return {"text": "", "fix": campaign_url}
