"""What a worker process loads: the sender's memory is a benchmark target (README,
*Performance*), so the libraries it does not need stay out of it, and the checks of the one
app taken out of INSTALLED_APPS for that still run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from django.core import checks

ROOT = Path(__file__).resolve().parents[2]

# Each of these was once in every worker process, and none of them sends mail: Celery's
# command line with Flower, Tornado and prompt-toolkit (settings/worker.py), requests through
# anymail's app, Pillow through the media model, rich through structlog, the admin.
NOT_IN_A_WORKER = [
    "flower",
    "tornado",
    "prompt_toolkit",
    "click_repl",
    "requests",
    "PIL",
    "rich",
    "mailer.admin",
    "campaigns.admin",
    "subscribers.admin",
    "imap_tools",
]

STARTS_A_WORKER = """
import sys
from celery.bin import worker
from settings import worker as launcher  # what `python -m settings.worker` imports
import django
django.setup()
from settings.celery import app
app.loader.import_default_modules()  # the tasks, as the worker loads them
print(",".join(sorted(name for name in %r if sys.modules.get(name))))
"""


def test_a_worker_process_loads_nothing_it_does_not_send_with():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings.base",
        "SECRET_KEY": "x" * 50,
        "DATABASE_URL": "postgres://u@127.0.0.1:1/db",
        "REDIS_URL": "redis://127.0.0.1:1/0",
    }
    loaded = subprocess.run(
        [sys.executable, "-c", STARTS_A_WORKER % (NOT_IN_A_WORKER,)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == ""


def test_anymails_checks_run_without_its_app(settings):
    settings.ANYMAIL = {"WEBHOOK_AUTHORIZATION": "user:secret"}
    found = {message.id for message in checks.run_checks()}
    assert "anymail.E001" in found
