from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from tests.factories import SmtpServerFactory
from tests.smtp_sink import SmtpSink

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("check_smtp", *args, stdout=out, no_color=True)
    return out.getvalue()


def test_a_good_server_passes_every_step(monkeypatch):
    sink = SmtpSink(password="secret").start()
    try:
        monkeypatch.setenv("SMTP_PASSWORD_CHECK", "secret")
        SmtpServerFactory(
            name="good", port=sink.port, username="u", password_env="SMTP_PASSWORD_CHECK"
        )
        output = run("good")
    finally:
        sink.stop()
    assert "ok   connected" in output
    assert "ok   EHLO: extensions" in output and "auth" in output
    assert "ok   logged in as 'u'" in output


def test_a_wrong_password_fails_at_the_login_step_and_says_what_to_check(monkeypatch):
    sink = SmtpSink(password="secret").start()
    try:
        monkeypatch.setenv("SMTP_PASSWORD_CHECK", "wrong")
        SmtpServerFactory(
            name="bad", port=sink.port, username="u", password_env="SMTP_PASSWORD_CHECK"
        )
        out = io.StringIO()
        with pytest.raises(CommandError, match="Failed: bad"):
            call_command("check_smtp", "bad", stdout=out, no_color=True)
    finally:
        sink.stop()
    assert "FAIL login as 'u'" in out.getvalue()
    assert "password variable" in out.getvalue()


def test_an_unreachable_server_fails_at_connect():
    SmtpServerFactory(name="nowhere", port=1)
    out = io.StringIO()
    with pytest.raises(CommandError):
        call_command("check_smtp", "nowhere", stdout=out, no_color=True)
    assert "FAIL connect:" in out.getvalue()


def test_an_unknown_name_lists_the_known_ones():
    SmtpServerFactory(name="known")
    with pytest.raises(CommandError, match=r"no SMTP server named 'other' \(configured: known"):
        run("other")
