"""An SMTP server's password variable can mail out nothing but an SMTP password.

The attack: a staff user who may add SMTP servers names SECRET_KEY (or DATABASE_URL) as the
password variable, points the server at a host of their own without TLS, presses *Check
connection*, and reads the secret from the AUTH command.
"""

from __future__ import annotations

import os

import pytest
from django.contrib.auth.models import Permission, User

from mailer.models import SmtpServer
from mailer.smtp import Connection, ServerConfig, ServerUnavailable, check_server
from tests.smtp_sink import SmtpSink

pytestmark = pytest.mark.django_db


def server_form(**fields: object) -> dict:
    return {
        "name": "mine",
        "host": "127.0.0.1",
        "port": 2525,
        "security": "none",
        "username": "u",
        "password_env": "SMTP_PASSWORD_MINE",
        "timeout": 20,
        "max_connections": 4,
        "weight": 1,
        "is_enabled": "on",
        **fields,
    }


@pytest.mark.parametrize("variable", ["SECRET_KEY", "DATABASE_URL", "smtp_password_x", "PATH"])
def test_a_password_variable_not_named_smtp_password_is_refused_on_save(admin_client, variable):
    response = admin_client.post(
        "/admin/mailer/smtpserver/add/", server_form(password_env=variable)
    )

    assert response.status_code == 200  # the form again, with the error
    assert "SMTP_PASSWORD_" in response.content.decode()
    assert not SmtpServer.objects.exists()


def test_a_password_variable_named_smtp_password_is_accepted(admin_client):
    response = admin_client.post("/admin/mailer/smtpserver/add/", server_form())

    assert response.status_code == 302
    assert SmtpServer.objects.get().password_env == "SMTP_PASSWORD_MINE"


def test_the_secret_key_is_never_sent_as_a_password_even_from_a_row_saved_around_the_form():
    secret = os.environ["SECRET_KEY"]
    sink = SmtpSink(password=secret).start()
    try:
        server = SmtpServer.objects.create(
            name="evil",
            host="127.0.0.1",
            port=sink.port,
            security=SmtpServer.Security.NONE,
            username="anyone",
            password_env="SECRET_KEY",
        )
        config = ServerConfig.from_model(server)
        steps = check_server(config)
    finally:
        sink.stop()

    assert config.password == ""
    assert not any(step.text.startswith("logged in") for step in steps)


def test_a_password_goes_over_plain_smtp_only_to_a_server_on_this_machine():
    sink = SmtpSink(password="p").start()
    try:
        # 0.0.0.0 is not a loopback address, though a connection to it lands on this machine
        # (so the test never sends anything elsewhere).
        config = ServerConfig(
            key="server-x",
            name="remote",
            host="0.0.0.0",  # noqa: S104
            port=sink.port,
            security=SmtpServer.Security.NONE,
            username="u",
            password="p",
            timeout=5,
            max_connections=1,
            rate_limit=None,
        )
        steps = check_server(config)
        with pytest.raises(ServerUnavailable) as refused:
            Connection(config).open()
        on_loopback = check_server(
            ServerConfig(**{**config.__dict__, "host": "127.0.0.1", "key": "server-y"})
        )
    finally:
        sink.stop()

    assert [step.ok for step in steps] == [False]
    assert "unencrypted" in steps[0].text and "STARTTLS" in steps[0].text
    assert refused.value.authentication
    assert on_loopback[-1].text == "logged in as 'u'"


def test_a_server_that_would_log_in_without_tls_off_this_machine_is_refused_on_save(
    admin_client,
):
    response = admin_client.post(
        "/admin/mailer/smtpserver/add/", server_form(host="smtp.example.com")
    )

    assert response.status_code == 200
    assert "unencrypted" in response.content.decode()
    assert not SmtpServer.objects.exists()


def test_checking_a_connection_needs_the_change_permission_of_smtp_servers(client, smtp_sink):
    server = SmtpServer.objects.create(name="sink", host="127.0.0.1", port=smtp_sink.port)
    viewer = User.objects.create_user("viewer", password="pw-viewer-123", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_smtpserver"))
    client.force_login(viewer)

    response = client.post(f"/admin/status/smtp/server-{server.pk}/check/")

    assert response.status_code == 403
    assert smtp_sink.handler.greetings == 0
