"""Docker is not available where the tests run, so compose.yaml is checked against the code:
its services, the queues its workers consume, its commands and its environment names."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml
from django.conf import settings
from django.core.management import get_commands

from mailer.models import BATCH_TURN_SECONDS
from settings.environment import VARIABLES

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
APP_SERVICES = ["migrate", "web", "beat", "dispatcher", "worker", "background", "sender", "flower"]
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "DJANGO_SUPERUSER_PASSWORD", "SENDER_CONCURRENCY"}


def command(service: str) -> list[str]:
    cmd = SERVICES[service]["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else cmd


def worker_queues(service: str) -> set[str]:
    argv = command(service)
    # Celery's worker command through the project's launcher (settings/worker.py says why).
    assert argv[:3] == ["python", "-m", "settings.worker"], argv
    return set(argv[argv.index("-Q") + 1].split(","))


def test_it_defines_every_service_of_the_design():
    assert set(SERVICES) >= {"postgres", "redis", *APP_SERVICES, "mailcatcher"}
    assert SERVICES["mailcatcher"]["profiles"] == ["dev"]


def test_workers_consume_exactly_the_configured_queues():
    consumed = (
        worker_queues("dispatcher")
        | worker_queues("worker")
        | worker_queues("background")
        | worker_queues("sender")
    )
    assert consumed == set(settings.MAILER_QUEUES)
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed <= consumed
    assert worker_queues("sender") == {"send"}, "bulk senders must not delay transactional mail"
    assert "transactional" not in worker_queues("sender")
    # Imports and webhook deliveries (`default`) take minutes or wait on slow endpoints.
    assert worker_queues("worker") == {"transactional"}, "nothing may delay transactional mail"


def test_senders_can_be_scaled():
    sender = SERVICES["sender"]
    assert "container_name" not in sender and "ports" not in sender
    assert "%h" in " ".join(command("sender")), "each replica needs its own worker name"


def test_app_services_use_only_variables_the_settings_read():
    for name in APP_SERVICES:
        env = SERVICES[name]["environment"]
        unknown = set(env) - set(VARIABLES) - COMPOSE_ONLY
        assert not unknown, f"{name} sets variables settings/ never reads: {unknown}"
        for required in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "FLOWER_BASIC_AUTH"):
            assert required in env, f"{name} lacks {required}"


def test_env_example_lists_every_variable_and_compose_uses_the_same_names():
    example = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert example == set(VARIABLES) | COMPOSE_ONLY
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "compose.yaml").read_text()))
    assert interpolated <= example


def test_start_order_is_enforced_by_health_checks():
    for name in ("postgres", "redis", "web"):
        assert "healthcheck" in SERVICES[name], name
    for name in ("web", "beat", "dispatcher", "worker", "background", "sender", "flower"):
        depends = SERVICES[name]["depends_on"]
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert SERVICES["migrate"]["restart"] == "no"


@pytest.mark.parametrize("service", ["migrate"])
def test_management_commands_in_compose_exist(service):
    text = " ".join(command(service))
    for used in re.findall(r"manage\.py (\w+)", text):
        assert used in get_commands(), used


def test_beat_flower_and_web_commands_point_at_real_modules():
    assert command("beat")[3] == "beat"
    flower = command("flower")
    assert "--conf=settings/flowerconfig.py" in flower
    assert (ROOT / "settings" / "flowerconfig.py").exists()
    web = command("web")
    assert web[:2] == ["gunicorn", "settings.wsgi"]
    assert (ROOT / "settings" / "wsgi.py").exists()
    assert settings.CELERY_BEAT_SCHEDULE["dispatch-tick"]["schedule"] == 1.0


LONG_RUNNING = ["web", "beat", "dispatcher", "worker", "background", "sender", "flower"]


@pytest.mark.parametrize("service", LONG_RUNNING)
def test_every_long_running_service_has_a_healthcheck(service):
    check = SERVICES[service].get("healthcheck")
    assert check and check["test"], f"{service} has no healthcheck"


@pytest.mark.parametrize("service", ["dispatcher", "worker", "background", "sender"])
def test_workers_get_longer_than_a_batch_turn_to_stop(service):
    grace = SERVICES[service].get("stop_grace_period", "10s")
    assert grace.endswith("s") and int(grace[:-1]) > BATCH_TURN_SECONDS
    command = " ".join(SERVICES[service]["healthcheck"]["test"])
    assert "alive worker" in command and f"{service}@" in command


def test_the_health_commands_exist():
    assert "alive" in get_commands()
