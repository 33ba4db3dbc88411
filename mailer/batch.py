"""A batch: one worker slot's turn of sending, at most MAX_BATCH_SECONDS long.

Chunk after chunk, the batch asks the scheduler which running campaign to serve (weighted
fair sharing of slot time, mailer.scheduler), claims that many of the campaign's due rows,
takes tokens for them from every rate limit that applies (mailer.throttle), sends them over a
pooled SMTP connection and records the results. A campaign whose tokens are not due yet is
put on hold for that long and the batch serves another; it never sleeps long in a worker
slot. Pause and cancel take effect at the next chunk: the claim only takes rows of running
campaigns.
"""

from __future__ import annotations

import random
import time
from typing import Any

import structlog
from django.db import DatabaseError
from redis.exceptions import RedisError
from structlog.contextvars import bound_contextvars

from campaigns.models import Campaign
from campaigns.rendering import TemplateError
from mailer import backoff, counters, events, heartbeats, leases, scheduler, shutdown, throttle
from mailer.fence import Fence, LostLease, MessageGuard
from mailer.journal import Journal
from mailer.ledger import Claimed, Result, claim, give_back, record
from mailer.message import HeaderInjectionError
from mailer.models import BATCH_TURN_SECONDS, Delivery, PerformanceSettings
from mailer.sender import (
    NOT_SENT,
    SETTINGS_EVERY,
    CampaignSender,
    domain_rates,
    pause_campaign,
    server_failed,
    to_result,
    unknown_outcomes,
)
from mailer.smtp import Connection, Outcome, ServerConfig, ServerUnavailable, pool

log = structlog.get_logger(__name__)

# A batch ends after this long and the dispatcher starts another: tasks stay short enough
# for Celery's time limits and for a worker to shut down promptly.
MAX_BATCH_SECONDS = BATCH_TURN_SECONDS
# With every campaign on hold, a batch waits up to this long for the first to be free again;
# longer, it ends and frees its slot.
MAX_SLEEP = 1.0
# A chunk stops sending after this long and gives its other rows back: with a slow server
# the chunk's rows are then shared by all the slots, and pause still takes effect promptly.
MAX_CHUNK_SECONDS = 1.0
# Spread of the wake-ups of idle slots, in seconds.
IDLE_JITTER = 0.02


def run_batch(*, batch_id: str) -> dict[str, Any]:
    """One slot's turn of sending; returns counts per campaign for the task's log line."""
    started = time.monotonic()
    owner = heartbeats.ensure_process_heartbeat()
    leases.grant(batch_id, leases.LEASE_SECONDS, owner=owner)
    batch = Batch(batch_id, started, owner)
    # Every line logged while the batch runs carries its id (and, per chunk, the campaign's).
    with bound_contextvars(batch_id=batch_id), shutdown.batch_running():
        try:
            batch.run()
        finally:
            leases.release(batch_id)
    summary: dict[str, Any] = {
        "sent": batch.counts["sent"],
        "failed": batch.counts["failed"],
        "retry": batch.counts["retry"],
        "campaigns": batch.per_campaign,
    }
    log.info(
        "batch done",
        batch_id=batch_id,
        **batch.counts,
        campaigns=",".join(f"{c}:{n}" for c, n in sorted(batch.per_campaign.items())),
        seconds=round(time.monotonic() - started, 3),
    )
    return summary


class Batch:
    def __init__(self, batch_id: str, started: float, owner: str) -> None:
        self.batch_id = batch_id
        self.owner = owner
        self.started = started
        self.counts = {"claimed": 0, "sent": 0, "failed": 0, "retry": 0, "given_back": 0}
        self.per_campaign: dict[int, int] = {}
        self.performance = PerformanceSettings.load()
        self.settings_loaded = time.monotonic()
        self.scheduler = scheduler.Scheduler(
            chunk=self.performance.batch_size, burst=throttle.BURST_SECONDS
        )
        self.senders: dict[int, CampaignSender | None] = {}
        self.connections: dict[str, Connection] = {}
        self.journal = Journal(batch_id)
        self.fence = Fence(batch_id, owner)
        self.guard = MessageGuard(self.fence, self.journal)
        self.setup_seconds = 0.0
        # Rows sent whose results are not in the database yet: while there are any, the
        # journal must survive this batch for the dispatcher's recovery to read it.
        self.unrecorded = False

    def refresh_settings(self) -> None:
        """Pick up what was changed under Settings → Performance while this batch runs."""
        if time.monotonic() - self.settings_loaded < SETTINGS_EVERY:
            return
        self.performance = PerformanceSettings.load()
        self.settings_loaded = time.monotonic()
        self.scheduler.chunk = self.performance.batch_size
        rates = domain_rates()
        for sender in self.senders.values():
            if sender is not None:
                sender.performance = self.performance
                sender.throttle.domain_rates = rates

    def sender_for(self, campaign_id: int) -> CampaignSender | None:
        if campaign_id not in self.senders:
            started = time.monotonic()
            campaign = Campaign.objects.select_related("template").filter(pk=campaign_id).first()
            running = campaign is not None and campaign.status == Campaign.Status.RUNNING
            self.senders[campaign_id] = (
                CampaignSender(campaign, self.performance) if running and campaign else None
            )
            self.setup_seconds += time.monotonic() - started
        return self.senders[campaign_id]

    def run(self) -> None:
        charge: scheduler.Charge | None = None
        try:
            while time.monotonic() - self.started < MAX_BATCH_SECONDS and not shutdown.requested():
                self.refresh_settings()
                pick = self.scheduler.pick(charge)
                charge = None
                if pick.campaign_id is None:
                    if 0 < pick.wait <= MAX_SLEEP:
                        # Idle slots would all wake at the instant a hold ends, and all but
                        # one find it taken: spread them over a few milliseconds.
                        time.sleep(pick.wait + random.uniform(0, IDLE_JITTER))  # noqa: S311
                        continue
                    break  # nothing to do for a while: free the slot
                began = time.monotonic()
                self.setup_seconds = 0.0
                first = pick.campaign_id not in self.senders
                sent = self.serve(pick)
                # Slot time is charged to the campaign served, except one-off set-up (loading
                # and compiling the campaign, opening an SMTP connection): whichever campaign
                # a fresh worker happens to serve first must not pay for the worker's start.
                # A batch's first chunk of a campaign also runs cold code paths (the first
                # renders, the first statements on a connection): it is charged what a chunk
                # of that campaign usually costs.
                measured = max(time.monotonic() - began - self.setup_seconds, 0.0)
                seconds = measured
                if first and sent:
                    seconds = pick.estimate * sent / max(pick.chunk, 1)
                charge = scheduler.Charge(
                    pick.campaign_id, seconds, pick.estimate, sent, measured=measured
                )
                # Renews the lease (and the heartbeat) every CONFIRM_EVERY seconds, idle or not.
                self.fence.check()
        except LostLease as lost:
            # Taken for dead (frozen past its heartbeat, say): another batch may have its
            # rows. It stops at once; what it still holds, if anything, goes back.
            returned = give_back(batch_id=self.batch_id, delivery_ids=None)
            log.warning("batch stopped: it lost its lease", reason=str(lost), returned=returned)
            events.warn(
                "batch stopped",
                f"A batch found it had been taken for dead and stopped before sending more "
                f"({returned} rows it still held went back to pending).",
                batch_id=self.batch_id,
            )
        except Exception:
            self.abandon()
            raise
        finally:
            if charge is not None:
                self.scheduler.charge(charge)
            for connection_ in self.connections.values():
                pool.release(connection_)
            self.journal.close(discard=not self.unrecorded)

    def abandon(self) -> None:
        """The batch fails (Redis or PostgreSQL unreachable, say). When every message it sent
        is recorded, the rows it claimed and did not send go back to pending now. Otherwise
        (or with the database out of reach) it is marked dead, so that the next dispatcher
        tick settles its rows from its journal, as after a crash, rather than after waiting
        out their lease."""
        if not self.unrecorded:
            try:
                returned = give_back(batch_id=self.batch_id, delivery_ids=None)
            except DatabaseError:
                pass
            else:
                if returned:
                    log.warning("batch failed, rows given back", rows=returned)
                return
        try:
            # Every journal entry has reached Redis before the batch is declared dead.
            self.journal.close(discard=False)
            leases.mark_dead(self.batch_id)
        except RedisError:
            pass  # Redis is out of reach too: the lease runs out and recovery takes over
        log.warning("batch failed, left to recovery")

    def serve(self, pick: scheduler.Pick) -> int:
        """Send one chunk of the picked campaign; returns how many messages were sent."""
        assert pick.campaign_id is not None
        with bound_contextvars(campaign_id=pick.campaign_id):
            return self.serve_campaign(pick, pick.campaign_id)

    def serve_campaign(self, pick: scheduler.Pick, campaign_id: int) -> int:
        sender = self.sender_for(campaign_id)
        if sender is None:
            scheduler.deactivate(campaign_id)
            return 0
        self.fence.check()  # before taking rows, make sure this batch still holds its lease
        now = time.monotonic()
        rows = claim(
            campaign_id=campaign_id,
            batch_id=self.batch_id,
            limit=max(min(pick.chunk, sender.claim_hint), 1),
            skip_domains=[d for d, until in sender.throttled_domains.items() if until > now],
        )
        self.counts["claimed"] += len(rows)
        if not rows:
            skipped = [until for until in sender.throttled_domains.values() if until > now]
            if skipped:
                # What is left goes to throttled domains: come back when the first is free.
                scheduler.hold(campaign_id, min(skipped) - now, "limited by domain throttles")
                sender.throttled_domains.clear()
                return 0
            # Nothing due (done, paused meanwhile, or only retries for later): stop serving it
            # until the dispatcher lists it again, which it does once rows are due.
            scheduler.deactivate(campaign_id)
            return 0
        grant = sender.throttle.acquire([row.domain for row in rows])
        stopped = grant.stopped_at < len(rows)  # a shared bucket ran out (not just a domain)
        if len(grant.positions) < len(rows):
            # Refused rows are claimed and handed back in vain: ask for about what the
            # limits let through, and grow again (doubling) once everything claimed goes.
            sender.claim_hint = len(grant.positions) + 1
        else:
            sender.claim_hint = min(sender.claim_hint * 2, pick.chunk)
        granted = set(grant.positions)
        refused_domains = (
            {row.domain for i, row in enumerate(rows[: grant.stopped_at]) if i not in granted}
            if len(granted) < grant.stopped_at
            else set()
        )
        for domain in refused_domains:
            # Its next token is due in about this long: claim other domains' rows meanwhile.
            sender.throttled_domains[domain] = now + max(grant.wait, throttle.BURST_SECONDS / 2)
        if grant.limited_by:
            throttle.note_limited(campaign_id, grant.limited_by)
        if stopped:
            # Serve other campaigns until this one's tokens are due. When its own rate ran
            # out, wait for half a burst of tokens rather than the next single one: otherwise
            # every free slot in the system wakes for each token, and most of them claim rows
            # only to hand them back (hundreds of claims a second for a few dozen messages).
            # Half the burst is taken before the bucket fills, so no token is wasted.
            wait = max(grant.wait, throttle.BURST_SECONDS / 2)
            scheduler.hold(campaign_id, wait, f"limited by {grant.limited_by}")
        to_send = [rows[i] for i in sorted(granted)]
        self.counts["given_back"] += give_back(
            batch_id=self.batch_id,
            delivery_ids=[r.id for i, r in enumerate(rows) if i not in granted],
        )
        if not to_send:
            return 0
        try:
            connection_ = self.connection(sender.server)
        except ServerUnavailable as error:
            self.counts["given_back"] += give_back(
                batch_id=self.batch_id, delivery_ids=[r.id for r in to_send]
            )
            self.server_failed(campaign_id, error)
            return 0
        results: list[Result] = []
        self.unrecorded = True
        began = time.monotonic()
        try:
            for row in to_send:
                # A slow server, or the worker is stopping: the rest goes back for other slots.
                if shutdown.requested() or (
                    results and time.monotonic() - began > MAX_CHUNK_SECONDS
                ):
                    break
                results.append(self.send_one(sender, connection_, row))
                if not results[-1].attempts:  # only a complaint of volume uses no attempt
                    # Too much mail for the server: slower from now on, for every worker.
                    backoff.cut(sender.server, results[-1].reply)
                    break
        except ServerUnavailable as error:
            # The connection dropped and could not be reopened: what was sent is recorded
            # below, the rest goes back to pending.
            self.connections.pop(sender.server.key, None)
            self.counts["given_back"] += give_back(
                batch_id=self.batch_id, delivery_ids=[r.id for r in to_send[len(results) :]]
            )
            self.server_failed(campaign_id, error)
        else:
            self.counts["given_back"] += give_back(
                batch_id=self.batch_id, delivery_ids=[r.id for r in to_send[len(results) :]]
            )
        finally:
            record(
                campaign_id=campaign_id,
                batch_id=self.batch_id,
                results=results,
                content_version=sender.content_version,
            )
            self.unrecorded = False
            sent = sum(1 for r in results if r.status == Delivery.Status.SENT)
            counters.note_sent(campaign_id, sent, sender.server.key)
            counters.note_unknown(campaign_id, unknown_outcomes(results))
            counters.note_server_replies(
                sender.server.key,
                sent=sent,
                errors=[
                    r.reply
                    for r in results
                    if r.status != Delivery.Status.SENT and not r.reply.startswith(NOT_SENT)
                ],
            )
        for r in results:
            self.counts[{"sent": "sent", "failed": "failed", "pending": "retry"}[r.status]] += 1
        if sent:
            self.per_campaign[campaign_id] = self.per_campaign.get(campaign_id, 0) + sent
        self.check_errors(campaign_id, results)
        return sent

    def connection(self, server: ServerConfig) -> Connection:
        connection_ = self.connections.get(server.key)
        if connection_ is None:
            started = time.monotonic()
            connection_ = pool.acquire(server)
            self.connections[server.key] = connection_
            self.setup_seconds += time.monotonic() - started
        return connection_

    def send_one(self, sender: CampaignSender, connection_: Connection, row: Claimed) -> Result:
        if not row.enabled:
            return Result(row.id, Delivery.Status.FAILED, f"{NOT_SENT}subscriber blocklisted")
        try:
            data = sender.message(row)
        except (HeaderInjectionError, TemplateError) as error:
            # This recipient's values make a message that cannot be sent (a line break in
            # their name, attributes that make the loops too long): it fails, with why.
            return Result(row.id, Delivery.Status.FAILED, f"{NOT_SENT}{error}"[:500])
        self.guard.row_id = row.id
        sent = connection_.send(sender.envelope_from, row.email, data, self.guard)
        if sent.outcome == Outcome.SENT:
            self.journal.note_sent(row.id)
        return to_result(row, sent, self.performance)

    def check_errors(self, campaign_id: int, results: list[Result]) -> None:
        failed = [r for r in results if r.status == Delivery.Status.FAILED]
        if not failed:
            return
        recent = counters.note_failed(campaign_id, len(failed))
        if recent <= self.performance.max_send_errors:
            return
        pause_campaign(
            campaign_id,
            f"paused by errors: {recent} failed sends in the last "
            f"{counters.ERROR_WINDOW // 60} minutes (limit {self.performance.max_send_errors}, "
            f"Settings → Performance); last reply: {failed[-1].reply}",
        )
        self.senders[campaign_id] = None

    def server_failed(self, campaign_id: int, error: ServerUnavailable) -> None:
        if server_failed(campaign_id, self.senders[campaign_id], error):
            self.senders[campaign_id] = None
