"""The fair scheduler against a real Redis server."""

from __future__ import annotations

import time
from collections import Counter

from mailer import scheduler
from mailer.scheduler import Charge, Scheduler, publish_active


def serve(sched: Scheduler, picks: int, cost: dict[int, float] | None = None) -> Counter:
    """Pick `picks` times, charging each chunk what it costs (default: its estimate)."""
    served: Counter = Counter()
    charge = None
    for _ in range(picks):
        pick = sched.pick(charge)
        assert pick.campaign_id is not None
        served[pick.campaign_id] += 1
        seconds = (cost or {}).get(pick.campaign_id, pick.estimate)
        charge = Charge(pick.campaign_id, seconds, pick.estimate, pick.chunk)
    return served


def test_equal_weights_take_turns():
    publish_active({1: 1, 2: 1, 3: 1})
    sched = Scheduler(chunk=50, burst=0.1)
    order = [sched.pick().campaign_id for _ in range(6)]
    assert order == [1, 2, 3, 1, 2, 3]


def test_slot_time_is_shared_by_weight():
    publish_active({1: 2, 2: 1, 3: 1})
    served = serve(Scheduler(chunk=50, burst=0.1), 400)
    assert served[1] == 200 and served[2] == 100 and served[3] == 100


def test_a_slow_campaign_gets_its_share_of_time_not_of_messages():
    publish_active({1: 1, 2: 1})
    # Campaign 2's chunks take ten times as long (a slow SMTP server): it must not take ten
    # times the slots.
    served = serve(Scheduler(chunk=50, burst=0.1), 220, cost={1: 0.01, 2: 0.1})
    assert 190 <= served[1] <= 210 and 10 <= served[2] <= 30


def test_a_held_campaign_is_skipped_and_banks_no_credit_for_the_wait():
    publish_active({1: 1, 2: 1})
    sched = Scheduler(chunk=50, burst=0.1)
    scheduler.hold(2, 0.3, "limited by campaign")
    assert {sched.pick().campaign_id for _ in range(5)} == {1}
    assert scheduler.held(2) == "limited by campaign"
    time.sleep(0.35)
    assert scheduler.held(2) is None
    # Back from its hold it takes turns again rather than catching up five chunks in a row.
    assert [sched.pick().campaign_id for _ in range(4)] in ([2, 1, 2, 1], [1, 2, 1, 2])


def test_with_every_campaign_held_it_says_how_long_until_the_first_is_free():
    publish_active({1: 1})
    scheduler.hold(1, 0.5, "limited by global")
    pick = Scheduler(chunk=50, burst=0.1).pick()
    assert pick.campaign_id is None and 0.4 <= pick.wait <= 0.5


def test_chunks_are_no_larger_than_a_campaigns_rate_releases_at_once():
    from mailer.throttle import publish_limits

    publish_active({1: 1})
    publish_limits(global_rate=None, campaign_rates={1: 100}, server_rates={}, domain_rates={})
    assert Scheduler(chunk=50, burst=0.1).pick().chunk == 10


def test_a_campaign_no_longer_listed_is_not_served():
    publish_active({1: 1, 2: 1})
    scheduler.deactivate(1)
    assert {Scheduler(chunk=50, burst=0.1).pick().campaign_id for _ in range(3)} == {2}
