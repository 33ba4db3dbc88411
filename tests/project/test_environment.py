"""Bad configuration stops the process at start-up with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GOOD = {
    "SECRET_KEY": "x" * 50,
    "DATABASE_URL": "postgres://u@localhost:5432/db",
    "REDIS_URL": "redis://localhost:6379/0",
}


def load_settings(**overrides: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in GOOD and k not in overrides}
    env.update(GOOD)
    for key, value in overrides.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run(
        [sys.executable, "-c", "import settings.base"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_good_settings_load():
    assert load_settings().returncode == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": None}, "SECRET_KEY is not set"),
        ({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL='mysql://u@h/db' is not valid"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379' is not valid"),
        (
            {"DB_POOL_MAX_SIZE": "lots"},
            "DB_POOL_MAX_SIZE='lots' is not valid: expected a whole number",
        ),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not valid: expected true or false"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL='LOUD' is not valid: expected one of DEBUG"),
    ],
)
def test_a_bad_value_fails_at_start_naming_the_variable(overrides, message):
    result = load_settings(**overrides)
    assert result.returncode != 0
    assert message in result.stderr


def load_flower_config(basic_auth: str) -> subprocess.CompletedProcess:
    """Flower's configuration read as Flower reads it, with this login."""
    return subprocess.run(
        # Flower executes its --conf file in a process whose path starts at the project.
        [sys.executable, "-c", "import runpy; runpy.run_path('settings/flowerconfig.py')"],
        cwd=ROOT,
        env={**os.environ, **GOOD, "FLOWER_BASIC_AUTH": basic_auth},
        capture_output=True,
        text=True,
        check=False,
    )


def test_flower_refuses_to_start_without_credentials():
    result = load_flower_config("admin")
    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr and "user:password" in result.stderr


def test_production_settings_pass_the_deploy_checks():
    env = {
        **os.environ,
        **GOOD,
        "DEBUG": "false",
        "SECRET_KEY": "p" * 20 + "-production-secret-" + "q" * 30,
        "SITE_URL": "https://mail.example.com",
        "ALLOWED_HOSTS": "mail.example.com",
        "SECURE_HSTS_SECONDS": "31536000",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
        "SECURE_HSTS_PRELOAD": "true",
        "SECURE_SSL_REDIRECT": "true",
        "TRUST_X_FORWARDED_PROTO": "true",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


@pytest.mark.django_db
def test_the_health_check_answers_over_plain_http_when_https_is_enforced(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    assert client.get("/healthz").content == b"ok\n"
    assert client.get("/admin/login/").status_code == 301
