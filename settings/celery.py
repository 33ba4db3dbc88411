"""The Celery app. Configuration comes from Django settings (CELERY_* names in settings/base.py)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")

app = Celery("mailer")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
