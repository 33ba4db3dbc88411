from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from mailer.smtp import pool
from settings.redis import get_redis
from tests.factories import SmtpServerFactory
from tests.smtp_sink import SmtpSink


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="Fault suite: the long variants (a 60 s run of 421 replies, a 30 s outage).",
    )


@pytest.fixture
def long_faults(request) -> bool:
    return bool(request.config.getoption("--long"))


@pytest.fixture(autouse=True)
def plain_static_files(settings) -> None:
    """Admin pages render without a collectstatic run (the manifest storage needs one)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def redis_prefix(settings) -> Iterator[str]:
    """Each test writes its own Redis keys, and removes them afterwards."""
    prefix = f"t-{uuid.uuid4().hex[:12]}"
    settings.REDIS_KEY_PREFIX = prefix
    yield prefix
    client = get_redis()
    keys = list(client.scan_iter(match=f"{{{prefix}}}*", count=1000))
    if keys:
        client.delete(*keys)


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink().start()
    yield sink
    pool.close_all()
    sink.stop()


@pytest.fixture
def sink_server(smtp_sink, db):
    """An SMTP server row pointing at the test sink, so every send goes there."""
    return SmtpServerFactory(port=smtp_sink.port)
