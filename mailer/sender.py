"""What a batch needs to send one campaign: its composer, SMTP server and throttle, the
domain throttles in force, and how an SMTP reply becomes the row's next state in the ledger
(sent, failed, or pending again after a back-off)."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import structlog
from django.utils import timezone

from campaigns.content import prepared_content
from campaigns.models import Campaign
from mailer import backoff, counters, events, scheduler, throttle
from mailer.compose import CampaignComposer
from mailer.ledger import Claimed, Result
from mailer.models import Delivery, DomainThrottle, PerformanceSettings
from mailer.smtp import (
    UNKNOWN_REPLY,
    Outcome,
    SendResult,
    ServerConfig,
    ServerUnavailable,
    choose_server,
)
from settings.redis import get_redis

log = structlog.get_logger(__name__)

# Replies that the project wrote itself, not an SMTP server, start with this.
NOT_SENT = "not sent: "
# After a connection broke mid-message, the recipient is tried again this soon.
CONNECTION_RETRY_SECONDS = 2

# Settings edited in the admin reach running batches within this many seconds (the live
# rates reach them sooner, through Redis, on the dispatcher's next tick).
SETTINGS_EVERY = 2.0

_domain_rates: tuple[float, dict[str, int]] = (0.0, {})


def domain_rates() -> dict[str, int]:
    """Domain throttles, re-read at most every SETTINGS_EVERY seconds."""
    global _domain_rates
    loaded_at, rates = _domain_rates
    if time.monotonic() - loaded_at > SETTINGS_EVERY:
        rates = dict(DomainThrottle.objects.values_list("domain", "rate_limit"))
        _domain_rates = (time.monotonic(), rates)
    return rates


def retry_at(attempts: int, performance: PerformanceSettings) -> datetime | None:
    """After `attempts` attempts, when to try again; None once attempts are used up."""
    if attempts >= performance.max_attempts:
        return None
    return timezone.now() + timedelta(seconds=performance.retry_delay * 2 ** (attempts - 1))


def to_result(row: Claimed, sent: SendResult, performance: PerformanceSettings) -> Result:
    if sent.outcome == Outcome.SENT:
        return Result(row.id, Delivery.Status.SENT, sent.reply)
    if sent.outcome == Outcome.PERMANENT:
        return Result(row.id, Delivery.Status.FAILED, sent.reply)
    if sent.outcome == Outcome.UNKNOWN and not performance.retry_unknown:
        # Most likely delivered: sending it again would most likely repeat it.
        return Result(row.id, Delivery.Status.SENT, sent.reply)
    if backoff.is_complaint(sent.reply):
        # Too much mail for the server, nothing about this recipient: again soon, at the
        # slower rate, and the attempt does not count.
        soon = timezone.now() + timedelta(seconds=backoff.RETRY_SECONDS)
        return Result(row.id, Delivery.Status.PENDING, sent.reply, soon, attempts=0)
    when = retry_at(row.attempts + 1, performance)
    if when is not None and sent.connection_lost:
        # The server or the network failed, not this address: try again as soon as the
        # server is back (the campaign is held meanwhile), not after the 4xx back-off.
        when = timezone.now() + timedelta(seconds=CONNECTION_RETRY_SECONDS)
    if when is None:
        reply = f"gave up after {row.attempts + 1} attempts: {sent.reply}"[:500]
        return Result(row.id, Delivery.Status.FAILED, reply)
    return Result(row.id, Delivery.Status.PENDING, sent.reply, when)


def unknown_outcomes(results: list[Result]) -> int:
    """How many of a chunk's messages went out whole with no answer from the server."""
    return sum(1 for r in results if r.reply.startswith(UNKNOWN_REPLY))


class CampaignSender:
    """What a batch needs to send one campaign's messages; made once per campaign per batch."""

    def __init__(self, campaign: Campaign, performance: PerformanceSettings) -> None:
        self.campaign = campaign
        self.performance = performance
        self.composer = CampaignComposer(campaign, prepared_content(campaign))
        # The content version these messages are built from; the ledger keeps it per message.
        self.content_version = campaign.content_version
        self.envelope_from = self.composer.envelope_from
        self.server: ServerConfig = choose_server(campaign.smtp_server_id)
        # How many rows to claim next. A campaign held to its rate (or a domain's) gets only
        # a few tokens per chunk (a tenth of a second's worth); claiming a full chunk and
        # handing most of it back each time cost two large UPDATEs per few messages. So
        # after a limit refused part of a chunk, the next claim asks for about what went.
        self.claim_hint = performance.batch_size
        # Domains whose throttle refused this batch, until when (time.monotonic()).
        self.throttled_domains: dict[str, float] = {}
        self.throttle = throttle.Throttle(
            campaign_id=campaign.pk,
            campaign_rate=campaign.effective_rate(performance.default_campaign_rate),
            global_rate=performance.message_rate,
            server_key=self.server.key,
            server_rate=self.server.rate_limit,
            domain_rates=domain_rates(),
        )

    def message(self, row: Claimed) -> bytes:
        return self.composer.message(
            delivery_id=row.id,
            subscriber_id=row.subscriber_id,
            email=row.email,
            name=row.name,
            attributes=row.attributes,
            subscriber_uuid=row.uuid,
        )


def pause_campaign(campaign_id: int, reason: str) -> None:
    """Pause a running campaign with the reason (too many errors, a refused login)."""
    campaign = Campaign.objects.filter(pk=campaign_id, status=Campaign.Status.RUNNING).first()
    if campaign is None:
        return
    # Running may always become paused; the update changes nothing if somebody paused or
    # cancelled it meanwhile.
    if not campaign.change_status(Campaign.Status.PAUSED, reason=reason):
        return
    log.info("campaign paused", campaign_id=campaign.pk, reason=reason)
    events.warn("campaign paused", reason, campaign_id=campaign_id)


# Consecutive failures to reach a campaign's SMTP server before the campaign pauses.
MAX_SERVER_FAILURES = 5


def server_failed(
    campaign_id: int, sender: CampaignSender | None, error: ServerUnavailable
) -> bool:
    """A campaign's SMTP server could not be reached or refused the login: hold the campaign
    for a growing while, or pause it; returns whether it was paused."""
    if sender is not None:
        counters.note_server_replies(sender.server.key, sent=0, errors=[str(error)])
    if error.authentication:
        pause_campaign(campaign_id, f"paused: {error}")
        return True
    client = get_redis()
    name = counters.server_failures_key(campaign_id)
    failures = int(client.incr(name))
    client.expire(name, 3600)
    if failures >= MAX_SERVER_FAILURES:
        pause_campaign(campaign_id, f"paused after {failures} failed attempts to connect: {error}")
        return True
    # Back off 2, 4, 8, 16 s before a batch tries this campaign's server again.
    scheduler.hold(campaign_id, 2**failures, f"SMTP server unavailable: {error}")
    events.warn(
        "smtp server unavailable",
        f"Campaign {campaign_id} could not reach its SMTP server ({failures} of "
        f"{MAX_SERVER_FAILURES} attempts before it pauses): {error}",
        campaign_id=campaign_id,
        failures=failures,
    )
    return False
