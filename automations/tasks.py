"""The sequences' periodic work, on the `dispatch` queue beside the dispatcher's tick."""

from __future__ import annotations

from contextlib import suppress

from celery import shared_task
from redis.exceptions import LockError

from automations import engine
from campaigns.ab_services import ab_decide_due
from settings.redis import get_redis, key


@shared_task(name="automations.tasks.advance_sequences", ignore_result=True)
def advance_sequences() -> int:
    """Let new subscribers in and move everyone due; one tick at a time across workers."""
    lock = get_redis().lock(key("automations", "lock"), timeout=60)
    if not lock.acquire(blocking=False):
        return 0
    try:
        ab_decide_due()  # A/B tests whose time is up send their winner
        return engine.tick()
    finally:
        with suppress(LockError):
            lock.release()
