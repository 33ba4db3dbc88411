"""Contract tests of the throttle against a real Redis server."""

from __future__ import annotations

import time

import pytest

from mailer.throttle import Demand, Throttle, allocate_rates, publish_limits
from settings.redis import get_redis


def make(**overrides) -> Throttle:
    options = {
        "campaign_id": 1,
        "campaign_rate": None,
        "global_rate": None,
        "server_key": "default",
        "server_rate": None,
        "domain_rates": {},
    }
    options.update(overrides)
    return Throttle(**options)


def test_without_limits_everything_is_granted():
    grant = make().acquire(["a.example"] * 50)
    assert grant.positions == list(range(50))
    assert grant.wait == 0 and grant.limited_by == ""


@pytest.mark.parametrize(
    ("option", "name"),
    [("global_rate", "global"), ("campaign_rate", "campaign"), ("server_rate", "server")],
)
def test_a_full_bucket_releases_its_burst_then_says_how_long_to_wait(option, name):
    bucket = make(**{option: 100})  # burst: 0.1 s of tokens = 10 messages

    grant = bucket.acquire(["a.example"] * 50)

    assert grant.positions == list(range(10))
    assert grant.limited_by == name
    assert grant.stopped_at == 10
    assert 0 < grant.wait <= 0.011


def test_grants_over_time_follow_the_rate():
    bucket = make(campaign_rate=200)
    granted = 0
    started = time.monotonic()
    while time.monotonic() - started < 2.0:
        grant = bucket.acquire(["a.example"] * 20)
        granted += len(grant.positions)
        if not grant.positions:
            time.sleep(grant.wait)
    elapsed = time.monotonic() - started
    # 200/s for the elapsed time, plus the first burst of 20.
    assert abs(granted - (200 * elapsed + 20)) <= 0.03 * 200 * elapsed


def test_limits_are_shared_by_every_throttle_of_a_campaign():
    first, second = make(campaign_rate=100), make(campaign_rate=100)
    assert len(first.acquire(["a.example"] * 8).positions) == 8
    assert len(second.acquire(["a.example"] * 8).positions) == 2


def test_a_throttled_domain_waits_while_other_domains_go():
    bucket = make(domain_rates={"gmail.com": 20})  # burst: 2 messages
    domains = ["gmail.com", "other.example"] * 10

    grant = bucket.acquire(domains)

    gmail = [p for p in grant.positions if domains[p] == "gmail.com"]
    other = [p for p in grant.positions if domains[p] == "other.example"]
    assert len(gmail) == 2 and len(other) == 10
    assert grant.limited_by == "domain:gmail.com"
    assert grant.stopped_at == len(domains), "a domain bucket never stops the others"


def test_live_rates_published_by_the_dispatcher_override_the_database_values():
    publish_limits(global_rate=None, campaign_rates={1: 50}, server_rates={}, domain_rates={})
    assert len(make(campaign_rate=1000).acquire(["a.example"] * 100).positions) == 5

    publish_limits(global_rate=None, campaign_rates={2: 50}, server_rates={}, domain_rates={})
    assert len(make(campaign_id=2, campaign_rate=None).acquire(["x"] * 100).positions) == 5


def test_every_key_carries_one_hash_tag_so_the_script_runs_on_a_cluster(redis_prefix):
    make(global_rate=10, campaign_rate=10, server_rate=10, domain_rates={"d.example": 5}).acquire(
        ["d.example", "e.example"]
    )
    keys = [k.decode() for k in get_redis().scan_iter(match=f"*{redis_prefix}*")]
    assert keys and all(k.startswith(f"{{{redis_prefix}}}:") for k in keys)


def test_the_global_rate_is_shared_by_weight_within_each_campaigns_own_limit():
    demands = [Demand(1, 1, 40), Demand(2, 1, None), Demand(3, 2, None)]
    # 40 is below campaign 1's weighted share (62.5): it keeps 40, the rest 210 is shared 1:2.
    assert allocate_rates(250, demands) == {1: 40, 2: 70, 3: 140}
    assert allocate_rates(250, [Demand(1, 1, 100), Demand(2, 1, None)]) == {1: 100, 2: 150}
    assert allocate_rates(None, demands) == {1: 40, 2: None, 3: None}
    assert allocate_rates(300, [Demand(1, 1, 50), Demand(2, 1, 80)]) == {1: 50, 2: 80}
    assert allocate_rates(90, [Demand(1, 2, None), Demand(2, 1, None)]) == {1: 60, 2: 30}
