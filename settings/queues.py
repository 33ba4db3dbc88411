"""Task names and how to enqueue them without importing the code that serves them.

A service that wants work done on a worker names the task here and enqueues it once its
transaction commits (in the style of Zulip's `queue_event_on_commit`): `campaigns` asks the
engine to look at a started campaign without importing `mailer`, and the dispatcher queues a
batch without importing `mailer.tasks`. Each name is routed to its queue in settings/base.py.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from settings.celery import app

DISPATCH_TICK = "mailer.tasks.dispatch_tick"
SEND_BATCH = "mailer.tasks.send_batch"
SEND_TRANSACTIONAL = "mailer.tasks.send_transactional"
SEND_OPTIN_CONFIRMATION = "mailer.tasks.send_optin_confirmation"
SEND_SUBSCRIBER_NOTICE = "mailer.tasks.send_subscriber_notice"
SEND_TX = "mailer.tasks.send_tx"
RUN_IMPORT = "subscribers.tasks.run_import"
FLUSH_TRACKING = "campaigns.tasks.flush_tracking"
DELIVER_WEBHOOKS = "webhooks.tasks.deliver_webhooks"
ADVANCE_SEQUENCES = "automations.tasks.advance_sequences"
READ_BOUNCE_MAILBOX = "mailer.tasks.read_bounce_mailbox"
ROLL_UP_CAMPAIGN = "mailer.tasks.roll_up_campaign"
FOLD_LEDGER = "mailer.tasks.fold_ledger"

# Which queue each task goes to (the four queues of the design).
ROUTES: dict[str, str] = {
    DISPATCH_TICK: "dispatch",
    ADVANCE_SEQUENCES: "dispatch",
    SEND_BATCH: "send",
    SEND_TRANSACTIONAL: "transactional",
    SEND_OPTIN_CONFIRMATION: "transactional",
    SEND_SUBSCRIBER_NOTICE: "transactional",
    SEND_TX: "transactional",
    READ_BOUNCE_MAILBOX: "default",
    ROLL_UP_CAMPAIGN: "default",
    FOLD_LEDGER: "default",
    "subscribers.tasks.*": "default",
    "campaigns.tasks.*": "default",
    "webhooks.tasks.*": "default",
}


def enqueue(task: str, **kwargs: Any) -> None:
    """Queue the task now, on the queue ROUTES gives it."""
    app.send_task(task, kwargs=kwargs)


def enqueue_on_commit(task: str, **kwargs: Any) -> None:
    """Queue the task once the current transaction commits (at once outside one), so that a
    worker never looks for rows the caller has not committed yet."""
    transaction.on_commit(lambda: enqueue(task, **kwargs))


# What beat sends, and how often (settings.base adds the bounce mailbox's, if any).
BEAT_SCHEDULE: dict[str, dict[str, Any]] = {
    "flush-tracking": {
        "task": FLUSH_TRACKING,
        "schedule": 5.0,
        "options": {"expires": 10},
    },
    # Webhook deliveries whose retry is due (each change also queues one at once).
    "deliver-webhooks": {
        "task": DELIVER_WEBHOOKS,
        "schedule": 5.0,
        "options": {"expires": 10},
    },
    "advance-sequences": {
        "task": ADVANCE_SEQUENCES,
        "schedule": 1.0,
        "options": {"expires": 5},
    },
    # Finished campaigns' ledgers folded into blocks (mailer.folding), one campaign a run.
    "fold-ledger": {
        "task": FOLD_LEDGER,
        "schedule": 3600.0,
        "options": {"expires": 600},
    },
    "dispatch-tick": {
        "task": DISPATCH_TICK,
        "schedule": 1.0,
        # A tick nobody picked up within a few seconds is stale; the next one does its work.
        "options": {"expires": 5},
    },
}
