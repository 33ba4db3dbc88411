"""Date triggers (a date attribute with an offset; yearly, in rounds) and waits until a
weekday and time in the subscriber's own time zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from django.utils import timezone

from automations import engine, entry, services
from automations.models import Enrollment, Sequence
from automations.waits import next_weekday_time
from mailer.models import Delivery
from tests.automations.helpers import sequence_with
from tests.factories import MailingListFactory, audience

pytestmark = pytest.mark.django_db


def test_a_date_attribute_with_an_offset_enters_once(queued):
    news = MailingListFactory()
    due, later, wrong = audience(news, 3)
    in_a_week = (timezone.now().date() + timedelta(days=7)).isoformat()
    due.attributes = {"renewal_date": in_a_week}
    later.attributes = {"renewal_date": "2099-01-01"}
    wrong.attributes = {"renewal_date": "next week"}
    for person in (due, later, wrong):
        person.save()
    sequence = sequence_with(
        [{"kind": "send"}],
        lists=[news],
        trigger=Sequence.Trigger.DATE,
        date_attribute="renewal_date",
        date_offset_days=-7,
    )
    services.sequence_activate(sequence=sequence)
    entry.scan()
    assert set(Enrollment.objects.values_list("subscriber_id", flat=True)) == {due.pk}
    Sequence.objects.filter(pk=sequence.pk).update(dates_scanned_on=None)
    entry.scan()  # the same day again: nobody twice
    assert Enrollment.objects.count() == 1


def test_a_yearly_date_enters_each_year_in_a_round_of_its_own(queued):
    news = MailingListFactory()
    (person,) = audience(news, 1)
    today = timezone.now().date()
    person.attributes = {"birthday": f"1990-{today:%m-%d}"}
    person.save()
    sequence = sequence_with(
        [{"kind": "send"}],
        lists=[news],
        trigger=Sequence.Trigger.DATE,
        date_attribute="birthday",
        date_yearly=True,
    )
    services.sequence_activate(sequence=sequence)
    entry.scan()
    (first,) = Enrollment.objects.all()
    assert first.round == today.year
    engine.tick()
    # A year later the same step sends again, as a new round of the ledger's key.
    Enrollment.objects.update(round=today.year - 1)
    Delivery.objects.update(round=today.year - 1)
    Sequence.objects.filter(pk=sequence.pk).update(dates_scanned_on=None)
    entry.scan()
    engine.tick()
    assert sequence.steps.get().campaign.deliveries.count() == 2


@pytest.mark.parametrize(
    ("now", "zone", "expected"),
    [
        # Monday 10:00 UTC is 11:00 in Paris; Tuesday 09:00 Paris is 08:00 UTC.
        (datetime(2026, 12, 7, 10, 0, tzinfo=UTC), "Europe/Paris", datetime(2026, 12, 8, 8, 0)),
        # In Tokyo it is already Monday 19:00: the next Tuesday 09:00 is tomorrow there.
        (datetime(2026, 12, 7, 10, 0, tzinfo=UTC), "Asia/Tokyo", datetime(2026, 12, 8, 0, 0)),
        # A zone that does not exist falls back to the sequence's (UTC here).
        (datetime(2026, 12, 7, 10, 0, tzinfo=UTC), "Mars/Olympus", datetime(2026, 12, 8, 9, 0)),
        # Tuesday 09:30 Paris: past today's 09:00, so next week's.
        (datetime(2026, 12, 8, 8, 30, tzinfo=UTC), "Europe/Paris", datetime(2026, 12, 15, 8, 0)),
    ],
)
def test_a_wait_until_a_weekday_is_in_the_subscribers_zone(now, zone, expected):
    got = next_weekday_time(now, weekday=1, at=time(9, 0), zone=zone, fallback="UTC")
    assert got == expected.replace(tzinfo=UTC)


def test_a_weekday_wait_uses_each_subscribers_timezone_attribute(queued):
    news = MailingListFactory()
    paris, tokyo = audience(news, 2)
    paris.attributes, tokyo.attributes = {"timezone": "Europe/Paris"}, {"timezone": "Asia/Tokyo"}
    paris.save()
    tokyo.save()
    sequence = sequence_with(
        [{"kind": "wait", "wait_weekday": 1, "wait_time": time(9, 0)}, {"kind": "send"}],
        lists=[news],
        trigger=Sequence.Trigger.MANUAL,
    )
    services.sequence_activate(sequence=sequence)
    services.sequence_enroll(sequence=sequence, subscriber_ids=[paris.pk, tokyo.pk])
    engine.tick()
    due = dict(Enrollment.objects.values_list("subscriber_id", "due_at"))
    assert due[paris.pk] - due[tokyo.pk] in (timedelta(hours=8), timedelta(hours=-7 * 24 + 8))
    assert all(d.astimezone(UTC).minute == 0 for d in due.values())
    assert date.today() <= max(due.values()).date()
