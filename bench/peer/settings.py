"""A minimal Django project for django-post-office (bench only), on the benchmark's servers."""

import os

SECRET_KEY = "peer-benchmark-only"  # noqa: S105 (a throw-away benchmark project)
DEBUG = False
USE_TZ = True
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "post_office"]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "peer",
        "USER": "postgres",
        "HOST": "127.0.0.1",
        "PORT": os.environ["PEER_POSTGRES_PORT"],
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {},
    }
]
# Django 6.1: queue through post_office, deliver through SMTP to the benchmark's smtp-sink.
MAILERS = {
    "default": {"BACKEND": "post_office.EmailBackend"},
    "smtp": {
        "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "OPTIONS": {"host": "127.0.0.1", "port": int(os.environ["PEER_SMTP_PORT"])},
    },
}
POST_OFFICE = {
    "DEFAULT_MAILER": "smtp",
    "CELERY_ENABLED": os.environ.get("PEER_CELERY", "") == "1",
    # Larger fetches than the default 100, as the docs suggest for bulk sending.
    "BATCH_SIZE": 1000,
    "LOCK_FILE_NAME": os.environ.get("PEER_LOCK", "/tmp/peer-post-office"),  # noqa: S108
}
CELERY_BROKER_URL = os.environ["PEER_REDIS_URL"]
CELERY_BROKER_TRANSPORT_OPTIONS = {"global_keyprefix": "peer:"}
CELERY_TASK_IGNORE_RESULT = True
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
