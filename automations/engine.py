"""Moves subscribers through their sequences: every second (beat) and when someone enters.

Work is set-based: the subscribers due at the same step of the same version are taken
together (up to CHUNK at a time, `FOR UPDATE SKIP LOCKED`, so two ticks never take the same
ones) and moved in one transaction per chunk, step after step, until each waits or leaves.
A send step adds their messages to the step's campaign's ledger in that transaction
(mailer.feed): the ledger's unique key makes each message once per (step, subscriber,
round) whatever crashes or repeats, and the send slots, the limits and the fair share of
the workers do the rest, as for any campaign.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.db import connection, transaction
from django.db.models import F
from django.db.models.functions import Now
from django.utils import timezone

from automations import entry, waits
from automations.models import Enrollment, Sequence, Step
from automations.signals import sequence_event
from campaigns.audience import RECEIVES_MAIL, condition_sql
from campaigns.models import Click, Open
from mailer import feed
from subscribers.models import MailingList, Subscriber, Subscription

log = structlog.get_logger(__name__)

# Subscribers moved together in one transaction.
CHUNK = 2000
# A tick stops taking more work after this long; the next tick goes on.
TICK_BUDGET_SECONDS = 1.0
# Steps one subscriber goes through in a tick before waiting for the next (a sequence of
# many steps without waits is not run in one go).
STEPS_PER_TICK = 50

ENROLLMENT = Enrollment._meta.db_table
SUBSCRIBER = Subscriber._meta.db_table
SUBSCRIPTION = Subscription._meta.db_table
MAILINGLIST = MailingList._meta.db_table
OPEN = Open._meta.db_table
CLICK = Click._meta.db_table


@dataclass
class Due:
    id: int
    subscriber_id: int
    round: int
    last_campaign_id: int | None


def tick() -> int:
    """Let new subscribers in, then move everyone due; returns how many moves were made."""
    entry.scan()
    started = time.monotonic()
    moved = 0
    for _ in range(STEPS_PER_TICK):
        groups = due_groups()
        if not groups:
            break
        for sequence_id, version, position in groups:
            # A step's chunks one after the other, until nobody is due there.
            while (count := advance(sequence_id, version, position)) > 0:
                moved += count
                if time.monotonic() - started > TICK_BUDGET_SECONDS:
                    return moved
                if count < CHUNK:
                    break
    return moved


# The steps that subscribers are at: a skip scan of the (sequence, version, position, due_at)
# index, one probe a step, then whether anyone there is due; never a pass over everyone.
_DUE_GROUPS = f"""
WITH RECURSIVE at_step AS (
    (SELECT sequence_id, version, position FROM {ENROLLMENT} WHERE state = 'active'
     ORDER BY sequence_id, version, position LIMIT 1)
    UNION ALL
    SELECT later.* FROM at_step, LATERAL (
        SELECT sequence_id, version, position FROM {ENROLLMENT}
        WHERE state = 'active'
          AND (sequence_id, version, position)
              > (at_step.sequence_id, at_step.version, at_step.position)
        ORDER BY sequence_id, version, position LIMIT 1
    ) later
)
SELECT a.sequence_id, a.version, a.position FROM at_step a
WHERE a.sequence_id IN (SELECT id FROM automations_sequence WHERE status = 'active')
  AND EXISTS (
    SELECT 1 FROM {ENROLLMENT} e
    WHERE e.state = 'active' AND e.sequence_id = a.sequence_id AND e.version = a.version
      AND e.position = a.position AND e.due_at <= statement_timestamp()
  )
"""  # noqa: S608 (only table names are interpolated)


def due_groups() -> list[tuple[int, int, int]]:
    """(sequence, version, position) of active sequences with subscribers due now."""
    with connection.cursor() as cursor:
        cursor.execute(_DUE_GROUPS)
        return [tuple(row) for row in cursor.fetchall()]  # type: ignore[misc]


def _take(sequence_id: int, version: int, position: int) -> list[Due]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT id, subscriber_id, round, last_campaign_id FROM {ENROLLMENT}
            WHERE sequence_id = %s AND version = %s AND position = %s
              AND state = 'active' AND due_at <= statement_timestamp()
            ORDER BY due_at LIMIT %s
            FOR UPDATE SKIP LOCKED
            """,  # noqa: S608
            [sequence_id, version, position, CHUNK],
        )
        return [Due(*row) for row in cursor.fetchall()]


def advance(sequence_id: int, version: int, position: int) -> int:
    """Run one step for a chunk of the subscribers due at it; returns how many moved."""
    sequence = Sequence.objects.filter(pk=sequence_id, status=Sequence.Status.ACTIVE).first()
    if sequence is None:
        return 0
    steps = {s.position: s for s in sequence.steps_of(version)}
    with transaction.atomic():
        rows = _take(sequence_id, version, position)
        if not rows:
            return 0
        step = steps.get(position)
        if step is None:  # past the last step
            _finish([r.id for r in rows], Enrollment.State.DONE, "went through every step")
            return len(rows)
        run = RUNNERS[step.kind]
        moves = run(sequence, step, rows)
        _apply(sequence, steps, step, moves)
    return len(rows)


@dataclass
class Moves:
    """What a step decided: who goes to which position, due when; who leaves, and why."""

    to: dict[int, list[int]]  # position -> enrollment ids (due now)
    due: dict[int, datetime]  # enrollment id -> when its next step is due (waits)
    leave: dict[str, list[int]]  # reason -> enrollment ids
    last_campaign_id: int | None = None


def _apply(sequence: Sequence, steps: dict[int, Step], step: Step, moves: Moves) -> None:
    for position, ids in moves.to.items():
        if not ids:
            continue
        timed = [i for i in ids if i in moves.due]
        now = [i for i in ids if i not in moves.due]
        fields: dict[str, Any] = {"position": position, "updated_at": timezone.now()}
        if moves.last_campaign_id is not None:
            fields["last_campaign_id"] = moves.last_campaign_id
        if now:
            # The database's clock, which decides what is due.
            Enrollment.objects.filter(pk__in=now).update(due_at=Now(), **fields)
        by_time: dict[datetime, list[int]] = defaultdict(list)
        for i in timed:
            by_time[moves.due[i]].append(i)
        for at, group in by_time.items():
            Enrollment.objects.filter(pk__in=group).update(due_at=at, **fields)
        if position in steps:
            Step.objects.filter(pk=steps[position].pk).update(entered=F("entered") + len(ids))
    for reason, ids in moves.leave.items():
        if ids:
            _finish(ids, Enrollment.State.EXITED, reason)
            Step.objects.filter(pk=step.pk).update(exited=F("exited") + len(ids))


def _finish(ids: list[int], state: str, reason: str) -> None:
    Enrollment.objects.filter(pk__in=ids).update(
        state=state, reason=reason[:200], updated_at=timezone.now()
    )


# --- The steps ----------------------------------------------------------------------------


def run_wait(sequence: Sequence, step: Step, rows: list[Due]) -> Moves:
    ids = [r.id for r in rows]
    if step.wait_weekday is None:
        at = timezone.now() + timedelta(seconds=step.wait_seconds or 0)
        return Moves({step.position + 1: ids}, dict.fromkeys(ids, at), {})
    zones = dict(
        Subscriber.objects.filter(pk__in=[r.subscriber_id for r in rows]).values_list(
            "pk", "attributes__timezone"
        )
    )
    due = {
        r.id: waits.next_weekday_time(
            timezone.now(),
            weekday=step.wait_weekday,
            at=step.wait_time,
            zone=zones.get(r.subscriber_id),
            fallback=sequence.timezone,
        )
        for r in rows
    }
    return Moves({step.position + 1: ids}, due, {})


def run_send(sequence: Sequence, step: Step, rows: list[Due]) -> Moves:
    assert step.campaign_id is not None
    queued = feed.append(
        campaign_id=step.campaign_id,
        subscriber_ids=[r.subscriber_id for r in rows],
        rounds=[r.round for r in rows],
    )
    going = [r.id for r in rows if r.subscriber_id in queued]
    gone = [r.id for r in rows if r.subscriber_id not in queued]
    leave = {"no longer on the sequence's lists, or blocklisted": gone}
    return Moves({step.position + 1: going}, {}, leave, last_campaign_id=step.campaign_id)


def run_branch(sequence: Sequence, step: Step, rows: list[Due]) -> Moves:
    passing = _passing(step, rows)
    yes = [r.id for r in rows if r.id in passing]
    no = [r.id for r in rows if r.id not in passing]
    if step.go_to is None:
        return Moves({step.position + 1: yes}, {}, {f"left at step {step.position}": no})
    return Moves({step.position + 1: yes, step.go_to: no}, {}, {})


def _passing(step: Step, rows: list[Due]) -> set[int]:
    """The enrollments for which the branch's test holds."""
    ids = [r.id for r in rows]
    params: dict[str, Any] = {"ids": ids}
    if step.test in (Step.Test.OPENED, Step.Test.CLICKED):
        table = OPEN if step.test == Step.Test.OPENED else CLICK
        test = f"""EXISTS (SELECT 1 FROM {table} t WHERE t.campaign_id = e.last_campaign_id
                   AND t.subscriber_id = e.subscriber_id)"""  # noqa: S608
    elif step.test == Step.Test.ON_LIST:
        test = f"""EXISTS (SELECT 1 FROM {SUBSCRIPTION} sub JOIN {MAILINGLIST} l
                   ON l.id = sub.mailing_list_id WHERE sub.subscriber_id = e.subscriber_id
                   AND sub.mailing_list_id = %(list)s AND {RECEIVES_MAIL})"""  # noqa: S608
        params["list"] = step.mailing_list_id
    else:
        test, extra = condition_sql(step.operator, step.attribute, step.value, 0)
        params.update(extra)
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT e.id FROM {ENROLLMENT} e JOIN {SUBSCRIBER} s ON s.id = e.subscriber_id
            WHERE e.id = ANY(%(ids)s) AND {test}""",  # noqa: S608
            params,
        )
        return {row[0] for row in cursor.fetchall()}


def run_list(sequence: Sequence, step: Step, rows: list[Due]) -> Moves:
    subscribers = [r.subscriber_id for r in rows]
    with connection.cursor() as cursor:
        if step.kind == Step.Kind.ADD_TO_LIST:
            # Added by the sequence, as by an import: confirmed, or left as they were.
            cursor.execute(
                f"""INSERT INTO {SUBSCRIPTION}
                (subscriber_id, mailing_list_id, status, created_at, updated_at)
                SELECT unnest(%s::bigint[]), %s, 'confirmed', now(), now()
                ON CONFLICT (subscriber_id, mailing_list_id) DO NOTHING""",
                [subscribers, step.mailing_list_id],
            )
        else:
            cursor.execute(
                f"""UPDATE {SUBSCRIPTION} SET status = 'unsubscribed', updated_at = now()
                WHERE mailing_list_id = %s AND subscriber_id = ANY(%s::bigint[])
                  AND status <> 'unsubscribed'""",  # noqa: S608
                [step.mailing_list_id, subscribers],
            )
    return Moves({step.position + 1: [r.id for r in rows]}, {}, {})


def run_webhook(sequence: Sequence, step: Step, rows: list[Due]) -> Moves:
    # Receivers (webhooks) write the events in this transaction: moved and announced together.
    sequence_event.send(
        sender=Sequence,
        sequence=sequence,
        event=step.event,
        subscriber_ids=[r.subscriber_id for r in rows],
    )
    return Moves({step.position + 1: [r.id for r in rows]}, {}, {})


RUNNERS = {
    Step.Kind.WAIT: run_wait,
    Step.Kind.SEND: run_send,
    Step.Kind.BRANCH: run_branch,
    Step.Kind.ADD_TO_LIST: run_list,
    Step.Kind.REMOVE_FROM_LIST: run_list,
    Step.Kind.WEBHOOK: run_webhook,
}
