"""The Django project package: settings, the Celery app, URLs and WSGI/ASGI entry points."""

import sys

# structlog loads rich (its console and traceback renderers, 4 MB in every process) whenever
# rich is installed: the image does not install it, development does (import-linter needs
# it). The project renders its log lines itself (settings.logformat), so none of its processes
# loads rich, and a worker measured in development weighs what it weighs in production.
sys.modules.setdefault("rich", None)  # type: ignore[arg-type]

from settings.celery import app as celery_app  # noqa: E402

__all__ = ["celery_app"]
