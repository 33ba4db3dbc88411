"""The Celery app. Configuration comes from Django settings (CELERY_* names in settings/base.py)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
# Django's system checks run in `migrate` (compose's one-shot service) and `manage.py check`.
# Celery repeats them as each worker starts, which loads every URL pattern, and with them the
# REST API's libraries (django-ninja, pydantic, sqlglot: about 20 MB), into every worker
# process that never serves a page.
os.environ.setdefault("CELERY_SKIP_CHECKS", "1")

app = Celery("mailer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
