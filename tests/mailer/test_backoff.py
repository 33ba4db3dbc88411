from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from mailer import backoff, counters, throttle
from mailer.ledger import Claimed
from mailer.models import Delivery, PerformanceSettings
from mailer.sender import to_result
from mailer.smtp import Outcome, SendResult, ServerConfig
from settings.redis import get_redis, key


@pytest.mark.parametrize(
    "reply",
    [
        "421 4.7.0 Too many messages, slow down",
        "sender refused: 421 4.7.0 Too many connections from your IP",
        "451 4.7.1 Rate limit exceeded, try again later",
        "421 4.7.28 Our system has detected an unusual rate of unsolicited mail",
        "421 4.7.0 [TSS04] Messages temporarily deferred due to unexpected volume",
        "451 throttled",
    ],
)
def test_it_hears_a_server_asking_for_less_mail(reply):
    assert backoff.is_complaint(reply)


@pytest.mark.parametrize(
    "reply",
    [
        "451 4.7.1 Greylisted, please try again later",  # about this message, not the rate
        "450 4.2.1 The user is receiving mail at a rate that prevents more",  # one mailbox
        "452 4.5.3 Too many recipients",  # per message
        "550 5.7.1 Too many complaints",  # permanent: the message fails
        "421 4.4.2 Connection timed out",
        "250 OK",
    ],
)
def test_other_replies_are_not_complaints(reply):
    assert not backoff.is_complaint(reply)


def server(rate_limit: int | None) -> ServerConfig:
    return dataclasses.replace(ServerConfig.default(), rate_limit=rate_limit, key="backoff-test")


def test_a_complaint_halves_the_rate_once_a_second_and_makes_it_live():
    config = server(100)
    assert backoff.cut(config, "421 too many") == 50
    # Replies to messages already on their way describe the rate just cut.
    assert backoff.cut(config, "421 too many") == 50
    live = get_redis().hget(throttle.limits_key(), throttle.field_server(config.key))
    assert float(live) == 50
    state = backoff.states()[config.key]
    assert (state["ceiling"], state["reply"]) == (100, "421 too many")


def test_it_cuts_from_what_was_really_sent_when_below_the_limit():
    config = server(100)
    # 180 messages in the last complete second: 60/s over the three-second window.
    get_redis().set(key("server-sent", config.key, int(time.time()) - 1), 180)
    assert counters.server_rate(config.key) == pytest.approx(60)
    assert backoff.cut(config, "421 too many") == pytest.approx(30)


def test_a_server_without_a_limit_comes_back_to_what_it_sent(monkeypatch):
    config = server(None)
    get_redis().set(key("server-sent", config.key, int(time.time()) - 1), 240)  # 80/s
    assert backoff.cut(config, "451 rate limit") == pytest.approx(40)
    assert backoff.states()[config.key]["ceiling"] == pytest.approx(80)
    monkeypatch.setattr(backoff, "HOLD_SECONDS", 0.0)
    monkeypatch.setattr(backoff, "STEP", 100.0)
    time.sleep(0.05)
    # Back at the ceiling the back-off ends, and the server has no limit again.
    assert backoff.recover({config.key: None}) == {config.key: None}


@pytest.mark.django_db
def test_a_complained_message_is_tried_again_soon_without_using_an_attempt():
    row = Claimed(1, "a@example.com", 3, "", {}, True, 1)
    performance = PerformanceSettings.load()
    result = to_result(
        row, SendResult(Outcome.TEMPORARY, "421 4.7.0 Too many messages"), performance
    )
    assert (result.status, result.attempts) == (Delivery.Status.PENDING, 0)
    assert result.next_attempt_at is not None
    assert result.next_attempt_at < timezone.now() + timedelta(seconds=5)
    other = to_result(row, SendResult(Outcome.TEMPORARY, "451 greylisted"), performance)
    assert other.attempts == 1
    assert other.next_attempt_at is not None
    assert other.next_attempt_at > timezone.now() + timedelta(seconds=60)
