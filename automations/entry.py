"""Who enters a sequence: new subscribers of its trigger list (found by a scan of recent
subscriptions, so that every way in counts: the public form, a confirmation link, the admin,
the API, an import), subscribers whose date attribute is due, and those named by an event,
by hand or by an import. Entering twice is harmless: one enrollment per (sequence,
subscriber, round), enforced by a unique key."""

from __future__ import annotations

import zoneinfo
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from automations.models import Enrollment, Sequence, Step
from campaigns.audience import RECEIVES_MAIL
from subscribers.models import MailingList, Subscriber, SubscriberImport, Subscription

ENROLLMENT = Enrollment._meta.db_table
SUBSCRIBER = Subscriber._meta.db_table
SUBSCRIPTION = Subscription._meta.db_table
MAILINGLIST = MailingList._meta.db_table

# Clocks of the application hosts and the database may differ by this much.
CLOCK_MARGIN = timedelta(seconds=30)

_ENROLL = f"""
INSERT INTO {ENROLLMENT}
    (sequence_id, subscriber_id, round, version, position, due_at, state, reason,
     entered_at, updated_at)
SELECT %(sequence)s, s.id, %(round)s, %(version)s, 1, now(), 'active', '', now(), now()
FROM {SUBSCRIBER} s
WHERE {{where}} AND s.status = 'enabled'
ON CONFLICT (sequence_id, subscriber_id, round) DO NOTHING
"""  # noqa: S608 (only table names and fixed SQL are interpolated)

_ON_SEQUENCE_LISTS = f"""EXISTS (
    SELECT 1 FROM {SUBSCRIPTION} sub JOIN {MAILINGLIST} l ON l.id = sub.mailing_list_id
    WHERE sub.subscriber_id = s.id
      AND sub.mailing_list_id IN (SELECT mailinglist_id FROM automations_sequence_lists
                                  WHERE sequence_id = %(sequence)s)
      AND {RECEIVES_MAIL}
)"""  # noqa: S608


def _enroll(sequence: Sequence, where: str, params: dict, round_: int = 0) -> int:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _ENROLL.replace("{where}", where),
            {**params, "sequence": sequence.pk, "round": round_, "version": sequence.version},
        )
        added = cursor.rowcount
        if added:
            Step.objects.filter(sequence=sequence, version=sequence.version, position=1).update(
                entered=F("entered") + added
            )
    return added


def enroll(sequence: Sequence, subscriber_ids: list[int], round_: int = 0) -> int:
    """Enter these subscribers (enabled ones) now; returns how many entered."""
    if not subscriber_ids:
        return 0
    return _enroll(sequence, "s.id = ANY(%(ids)s::bigint[])", {"ids": subscriber_ids}, round_)


def scan() -> int:
    """Enter whoever is due by the list and date triggers of the active sequences."""
    entered = 0
    for sequence in Sequence.objects.filter(status=Sequence.Status.ACTIVE).exclude(
        trigger__in=[Sequence.Trigger.EVENT, Sequence.Trigger.MANUAL]
    ):
        if sequence.trigger == Sequence.Trigger.LIST:
            entered += scan_list(sequence)
        else:
            entered += scan_dates(sequence)
    return entered


def safe_horizon() -> datetime:
    """A time before which every subscription change is committed: the start of the oldest
    transaction still open elsewhere (its rows carry times from after its start), less a
    margin for clocks. Rows changed since are looked at again by the next scan."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT least(now(), min(xact_start)) FROM pg_stat_activity "
            "WHERE xact_start IS NOT NULL AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"  # (autovacuum writes no subscriptions)
        )
        (oldest,) = cursor.fetchone()
    return (oldest or timezone.now()) - CLOCK_MARGIN


def scan_list(sequence: Sequence) -> int:
    """Subscriptions to the trigger list made since the sequence was activated, looked at
    from where the last scan got to (an index on the list and the time keeps it short)."""
    horizon = safe_horizon()
    since = sequence.scanned_to or sequence.activated_at or horizon
    where = f"""s.id IN (
        SELECT sub.subscriber_id FROM {SUBSCRIPTION} sub
        JOIN {MAILINGLIST} l ON l.id = sub.mailing_list_id
        WHERE sub.mailing_list_id = %(list)s AND sub.updated_at >= %(since)s
          AND sub.created_at >= %(activated)s
          AND {RECEIVES_MAIL}
    )"""  # noqa: S608
    params = {"list": sequence.trigger_list_id, "since": since, "activated": sequence.activated_at}
    added = _enroll(sequence, where, params)
    if horizon > since:
        Sequence.objects.filter(pk=sequence.pk).update(scanned_to=horizon)
    return added


def scan_dates(sequence: Sequence) -> int:
    """Once a day (in the sequence's time zone): subscribers on its lists whose date attribute
    plus the offset is today; a yearly trigger compares day and month, in rounds by year."""
    today = timezone.now().astimezone(zoneinfo.ZoneInfo(sequence.timezone)).date()
    if sequence.dates_scanned_on == today:
        return 0
    target = today - timedelta(days=sequence.date_offset_days)
    value = "(s.attributes ->> %(attribute)s)"
    well_formed = f"{value} ~ '^[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}'"
    if sequence.date_yearly:
        when = f"substr({value}, 6, 5) = %(day)s"
        params = {"day": target.strftime("%m-%d")}
        round_ = target.year
    else:
        when = f"substr({value}, 1, 10) = %(day)s"
        params = {"day": target.isoformat()}
        round_ = 0
    where = f"{well_formed} AND {when} AND {_ON_SEQUENCE_LISTS}"
    added = _enroll(sequence, where, {**params, "attribute": sequence.date_attribute}, round_)
    Sequence.objects.filter(pk=sequence.pk).update(dates_scanned_on=today)
    return added


def by_import(sequence: Sequence, job: SubscriberImport) -> int:
    """Enter everyone a finished import wrote to its list: the subscriptions it touched."""
    where = f"""s.id IN (
        SELECT sub.subscriber_id FROM {SUBSCRIPTION} sub
        WHERE sub.mailing_list_id = %(list)s AND sub.updated_at >= %(started)s
          AND sub.updated_at <= %(finished)s
    )"""  # noqa: S608
    params = {"list": job.mailing_list_id, "started": job.started_at, "finished": job.finished_at}
    return _enroll(sequence, where, params)


def by_event(*, subscriber_id: int, event: str) -> list[Sequence]:
    """Enter the subscriber into every active sequence this event starts; returns them."""
    entered = []
    for sequence in Sequence.objects.filter(
        status=Sequence.Status.ACTIVE, trigger=Sequence.Trigger.EVENT, trigger_event=event
    ):
        if _enroll(sequence, f"s.id = %(id)s AND {_ON_SEQUENCE_LISTS}", {"id": subscriber_id}):
            entered.append(sequence)
    return entered
