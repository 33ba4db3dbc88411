"""The placeholders of .env.example are not secrets: a deployment that kept them stops at
start-up naming the variable, and the first admin cannot be created with a guessable password."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command

from tests.project.test_environment import load_flower_config, load_settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SECRET_KEY", "change-me-to-a-long-random-string"),
        ("SECRET_KEY", "short-but-random-Zq81"),
        ("METRICS_TOKEN", "change-me-too"),
        ("BOUNCE_WEBHOOK_TOKEN", "change-me"),
        ("ANYMAIL_WEBHOOK_SECRET", "hooks:change-me"),
    ],
)
def test_a_placeholder_or_short_secret_stops_the_start(variable, value):
    result = load_settings(**{variable: value, "DEBUG": "false"})

    assert result.returncode != 0
    assert f"{variable} " in result.stderr and "random" in result.stderr


def test_in_debug_the_example_secret_key_is_tolerated():
    assert (
        load_settings(SECRET_KEY="change-me-to-a-long-random-string", DEBUG="true").returncode == 0
    )


def test_flower_refuses_the_example_login():
    result = load_flower_config("admin:change-me")

    assert result.returncode != 0
    assert "FLOWER_BASIC_AUTH" in result.stderr and "placeholder" in result.stderr


@pytest.mark.django_db
@pytest.mark.parametrize("password", ["change-me", "admin", "12345678", "password1"])
def test_the_first_admin_is_not_created_with_a_guessable_password(monkeypatch, password):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", password)

    with pytest.raises(CommandError, match="DJANGO_SUPERUSER_PASSWORD"):
        call_command("ensure_superuser", "--username", "admin")

    assert not User.objects.filter(username="admin").exists()
