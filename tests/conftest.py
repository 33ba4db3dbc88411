from __future__ import annotations

import importlib
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mailer.smtp import pool
from settings import queues
from settings import urls as served_urls
from settings.celery import app
from settings.redis import get_redis
from tests.factories import SmtpServerFactory
from tests.imap_server import ImapServer
from tests.pop3_server import Pop3Server
from tests.smtp_sink import SmtpSink


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--long",
        action="store_true",
        help="Fault suite: the long variants (a 60 s run of 421 replies, a 30 s outage).",
    )
    parser.addoption(
        "--soak",
        action="store_true",
        help="Fault suite: the soak run (500 messages/s with a random fault every minute).",
    )
    parser.addoption(
        "--soak-minutes",
        type=int,
        default=30,
        help="How long the soak run sends (default 30 minutes).",
    )


@pytest.fixture
def long_faults(request) -> bool:
    return bool(request.config.getoption("--long"))


@pytest.fixture
def soak_minutes(request) -> int:
    """Minutes of the soak run; 0 without --soak (the test is then skipped)."""
    if not request.config.getoption("--soak"):
        return 0
    return int(request.config.getoption("--soak-minutes"))


# The admin's registrations, made where the URLs are served (workbench.apps), as in the web
# process: tests that read the admin site without a request see every app's admin.
assert served_urls.urlpatterns


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


class Queued:
    """The tasks a request asked for, held instead of sent to the broker, and run here, in
    this process, when the test says so (the task's own code, against the real servers)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def add(self, task: str, **kwargs) -> None:
        self.calls.append((task, kwargs))

    def run(self) -> list[str]:
        names = []
        while self.calls:
            task, kwargs = self.calls.pop(0)
            importlib.import_module(task.rpartition(".")[0])  # registers the task
            app.tasks[task](**kwargs)
            names.append(task)
        return names


@pytest.fixture
def queued(monkeypatch) -> Queued:
    held = Queued()
    monkeypatch.setattr(queues, "enqueue_on_commit", held.add)
    monkeypatch.setattr(queues, "enqueue", held.add)
    return held


@pytest.fixture
def roles(db) -> None:
    """The role groups as the migration makes them. Tests that run real processes empty the
    database after them, migration-made rows included, so a later test makes them again."""
    from django.apps import apps

    importlib.import_module("mailer.migrations.0008_roles").create_roles(apps, None)
    importlib.import_module("mailer.migrations.0012_transactional_permissions").grant(apps, None)
    importlib.import_module("mailer.migrations.0015_mailbox_permissions").grant(apps, None)
    importlib.import_module("webhooks.migrations.0002_permissions").grant(apps, None)
    importlib.import_module("automations.migrations.0002_permissions").grant(apps, None)
    importlib.import_module("campaigns.migrations.0019_ab_test_permissions").grant(apps, None)
    importlib.import_module("campaigns.migrations.0022_media_permissions").grant(apps, None)


@pytest.fixture
def imap_server() -> Iterator[ImapServer]:
    server = ImapServer().start()
    yield server
    server.stop()


@pytest.fixture
def pop3_server() -> Iterator[Pop3Server]:
    # Not under tmp_path: Dovecot's own users must be able to reach the folder.
    root = Path(tempfile.mkdtemp(prefix="dovecot-"))
    root.chmod(0o755)
    server = Pop3Server(root).start()
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)
