"""The test PostgreSQL and Redis that `./dev test` started, for the suite to stop and start
mid-campaign (it says where they live in TEST_SERVERS_DIR)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from devstack.processes import Service
from devstack.servers import Postgres, redis_service, wait_for_redis

needs_servers = pytest.mark.skipif(
    "TEST_SERVERS_DIR" not in os.environ,
    reason="restarts the servers that `./dev test` starts (it sets TEST_SERVERS_DIR)",
)


def _state() -> Path:
    return Path(os.environ["TEST_SERVERS_DIR"])


def postgres() -> Postgres:
    return Postgres(
        _state() / "postgres",
        urlsplit(os.environ["DATABASE_URL"]).port or 5432,
        _state() / "run" / "postgres.log",
        ephemeral=True,
    )


def redis() -> Service:
    return redis_service(
        run_dir=_state() / "run",
        data_dir=_state() / "redis",
        port=urlsplit(os.environ["REDIS_URL"]).port or 6379,
        persistent=False,
    )


def start_redis(service: Service) -> None:
    service.start()
    assert service.port is not None
    wait_for_redis(service.port, service.log)
