"""Django set up for a benchmark that needs no server: the settings read a database and a
Redis address they never connect to."""

from __future__ import annotations

import os


def setup(name: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings.base")
    os.environ.setdefault("DEBUG", "1")
    os.environ.setdefault("SECRET_KEY", f"bench-{name}-" + "k" * 48)
    os.environ.setdefault("DATABASE_URL", "postgres://bench@127.0.0.1:1/bench")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
    os.environ.setdefault("SITE_URL", "https://news.example")
    import django

    django.setup()
