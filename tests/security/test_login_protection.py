"""Admin logins: repeated failures lock the guesser out (django-axes); a user with two-factor
login gives an authenticator code as well (django-otp); with OTP_REQUIRED_FOR_SUPERUSERS a
superuser cannot use the admin without one."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

pytestmark = pytest.mark.django_db

PASSWORD = "a-long-admin-password-1"


def code(device: TOTPDevice) -> str:
    """What the user's authenticator app shows now."""
    device.refresh_from_db()
    value = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{value:0{device.digits}d}"


def log_in(client, username: str, password: str, otp_token: str = ""):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "otp_token": otp_token, "next": "/admin/"},
    )


@pytest.fixture
def admin(db) -> User:
    return User.objects.create_superuser("boss", "boss@shop.example", PASSWORD)


def test_repeated_failures_lock_the_address_out_even_with_the_right_password(
    client, admin, settings
):
    settings.AXES_FAILURE_LIMIT = 3  # the default is 10 (LOGIN_FAILURE_LIMIT)
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "boss", "guess").status_code == 200
    assert log_in(client, "boss", "guess").status_code == 429  # the last failure allowed
    locked = log_in(client, "boss", PASSWORD)
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session


def test_a_success_before_the_limit_resets_the_count(client, admin, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "boss", "guess")
    assert log_in(client, "boss", PASSWORD).status_code == 302
    client.logout()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "boss", "guess")
    assert log_in(client, "boss", PASSWORD).status_code == 302


def test_a_user_with_an_authenticator_needs_its_code(client, admin):
    device = TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)

    without = log_in(client, "boss", PASSWORD)
    assert without.status_code == 200 and "_auth_user_id" not in client.session
    assert log_in(client, "boss", PASSWORD, code(device)).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_a_wrong_code_is_refused(client, admin):
    device = TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)
    wrong = "000000" if code(device) != "000000" else "111111"
    answer = log_in(client, "boss", PASSWORD, wrong)
    assert answer.status_code == 200 and "_auth_user_id" not in client.session


def test_superusers_must_set_up_two_factor_login_when_the_setting_says_so(client, admin, settings):
    settings.OTP_REQUIRED_FOR_SUPERUSERS = True
    assert log_in(client, "boss", PASSWORD).status_code == 302
    sent = client.get("/admin/campaigns/campaign/")
    assert sent.status_code == 302 and sent["Location"] == "/admin/two-factor/"

    page = client.get("/admin/two-factor/").content.decode()
    assert "<svg" in page and re.search(r'id="two-factor-secret">[A-Z2-7]+<', page)
    device = TOTPDevice.objects.get(user=admin)
    done = client.post("/admin/two-factor/", {"token": code(device)})
    assert done.status_code == 302
    assert client.get("/admin/campaigns/campaign/").status_code == 200


def test_a_superuser_session_without_a_code_is_ended_when_it_is_required(client, admin, settings):
    settings.OTP_REQUIRED_FOR_SUPERUSERS = True
    TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)
    client.force_login(admin)  # a session from before the setting, say
    answer = client.get("/admin/")
    assert answer.status_code == 302 and answer["Location"].startswith("/admin/login/")
    assert "_auth_user_id" not in client.session


def test_staff_who_are_not_superusers_are_not_forced(client, settings):
    settings.OTP_REQUIRED_FOR_SUPERUSERS = True
    User.objects.create_user("editor", "e@shop.example", PASSWORD, is_staff=True)
    assert log_in(client, "editor", PASSWORD).status_code == 302
    assert client.get("/admin/").status_code == 200
