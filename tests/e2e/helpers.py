from __future__ import annotations

import time
from collections.abc import Callable

from campaigns.models import Campaign
from mailer.models import PerformanceSettings
from mailer.throttle import BURST_SECONDS
from subscribers.models import MailingList, Subscriber, Subscription
from tests.factories import CampaignFactory, MailingListFactory


def bulk_audience(mailing_list: MailingList, emails: list[str]) -> None:
    """Many subscribers at once (factories would take seconds for thousands)."""
    subscribers = Subscriber.objects.bulk_create(
        Subscriber(email=email, name=email.split("@")[0]) for email in emails
    )
    Subscription.objects.bulk_create(
        Subscription(subscriber=s, mailing_list=mailing_list, status="confirmed")
        for s in subscribers
    )


def wait_until(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def status(campaign: Campaign) -> str:
    return Campaign.objects.values_list("status", flat=True).get(pk=campaign.pk)


def rate_between(times: list[float], start: float, end: float) -> float:
    return sum(1 for t in times if start <= t < end) / (end - start)


# The sink stamps each message in a Python thread of the test process, and the senders are
# Python processes: on a loaded machine either may be descheduled for a tenth of a second or
# more, and what arrives meanwhile is stamped together. A one-second window at the sink can
# then hold this many seconds' worth more than the limit's own burst allows; averages over
# several seconds are not affected.
SCHEDULING_SLACK = 0.2


def burst_bound(rate: float) -> float:
    """The most a one-second window at the sink may hold under a limit of `rate`: the rate,
    the burst the token bucket grants (throttle.BURST_SECONDS), and the scheduling slack."""
    return rate * (1 + BURST_SECONDS + SCHEDULING_SLACK)


def largest_one_second_burst(times: list[float]) -> int:
    ordered = sorted(times)
    best, left = 0, 0
    for right, t in enumerate(ordered):
        while ordered[left] <= t - 1.0:
            left += 1
        best = max(best, right - left + 1)
    return best


def settings_row(**fields) -> None:
    PerformanceSettings.objects.update_or_create(pk=1, defaults=fields)


def campaign_with(count: int, prefix: str, domain: str = "example.com", **fields) -> Campaign:
    """A campaign to `count` new subscribers named prefix0@domain, prefix1@domain, …"""
    mailing_list = MailingListFactory()
    bulk_audience(mailing_list, [f"{prefix}{n}@{domain}" for n in range(count)])
    return CampaignFactory(lists=[mailing_list], **fields)
