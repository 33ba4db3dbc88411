"""Fencing: a batch makes sure it still holds its lease right before each side effect.

An SMTP server cannot check a fencing token, so the sender checks itself (the pattern of
Kafka's and Temporal's workers): before each claim, each MAIL FROM and each final dot.
"""

from __future__ import annotations

import time

from mailer import leases
from mailer.journal import Journal


class LostLease(Exception):
    """This batch was taken for dead: another batch may be sending its rows now."""


# How long a batch may go without confirming its lease before its next side effect. Well
# under the heartbeat's expiry (heartbeats.HEARTBEAT_TTL): a batch confirmed within this
# long cannot have been taken for dead, since confirming also beats its heartbeat.
CONFIRM_EVERY = 2.0


class Fence:
    """A batch fences itself, as an SMTP server cannot check a fencing token: before each
    side effect (a claim, a MAIL FROM, the final dot of a message) it makes sure it still
    holds its lease. Usually that is a look at the clock: it confirmed the lease less than
    CONFIRM_EVERY seconds ago. A process that was frozen (SIGSTOP, a paused VM, swapping)
    finds much more time gone on waking, asks Redis, and learns it lost its rows before it
    sends anything more."""

    def __init__(self, batch_id: str, owner: str) -> None:
        self.batch_id = batch_id
        self.owner = owner
        self.confirmed_at = time.monotonic()

    def check(self) -> None:
        if time.monotonic() - self.confirmed_at >= CONFIRM_EVERY:
            self.confirm()

    def confirm(self) -> None:
        asked = time.monotonic()
        if not leases.renew(self.batch_id, self.owner):
            raise LostLease(f"batch {self.batch_id} lost its lease; another batch has its rows")
        self.confirmed_at = asked


class MessageGuard:
    """Around each message: the batch must still hold its lease before MAIL FROM and before
    the final dot, and it journals the dot before writing it (mailer.journal)."""

    def __init__(self, fence: Fence, journal: Journal) -> None:
        self.fence = fence
        self.journal = journal
        self.row_id = 0

    def before_mail(self) -> None:
        self.fence.check()

    def before_dot(self) -> None:
        self.fence.check()
        self.journal.note_sending(self.row_id)
