"""Security: who may reach what, CSRF on every form, links that cannot be forged or guessed,
no open redirect, secrets only from the environment. (`manage.py check --deploy` with
production settings: tests/project/test_environment.py.)"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from subscribers import links
from tests.factories import CampaignFactory, MailingListFactory, SubscriberFactory, solved_pow
from tests.smtp_sink import free_port

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]

# Views that take POSTs without a CSRF token, and why that is safe.
CSRF_EXEMPT = {
    "subscribe",  # embedded in other sites; double opt-in protects the list
    "unsubscribe",  # RFC 8058 one-click: mail clients POST without cookies; the signed link
    "bounces",  # called by other systems with a bearer token
}


def routes(resolver: URLResolver | None = None, prefix: str = ""):
    """(path with sample arguments, name, view) of every URL the project serves."""
    for entry in (resolver or get_resolver()).url_patterns:
        route = prefix + str(entry.pattern)
        sample = (
            route.replace("^", "")
            .replace("$", "")
            .replace("\\Z", "")
            .replace("(?P<app_label>campaigns|mailer|subscribers|auth)", "mailer")
        )
        for converter in ("<path:object_id>", "<int:pk>", "<int:list_id>", "<int:link_id>"):
            sample = sample.replace(converter, "1")
        sample = sample.replace("<str:token>", "x").replace("<int:campaign_id>", "1")
        if isinstance(entry, URLResolver):
            yield from routes(entry, route)
        elif isinstance(entry, URLPattern):
            yield "/" + sample, entry.name, entry.callback


PUBLIC_ADMIN = {"login", "logout", "password_reset", "view_on_site", "jsi18n"}


def admin_routes() -> list[str]:
    found = []
    for path, name, _ in routes():
        if not path.startswith("/admin") or name in PUBLIC_ADMIN or "<" in path or "(" in path:
            continue
        found.append(path)
    return sorted(set(found))


def test_every_admin_page_and_the_status_endpoints_refuse_anonymous_and_non_staff(client):
    paths = admin_routes()
    assert len(paths) > 40  # the walk found the model admins and the project's own pages
    member = User.objects.create_user("member", password="pw-member-1")
    logged_in = Client()
    logged_in.force_login(member)
    for who in (client, logged_in):
        for path in paths:
            response = who.get(path)
            assert response.status_code in (302, 401, 403, 404), (path, response.status_code)
            if response.status_code == 302:
                assert response["Location"].startswith("/admin/login/"), path
    for path in ("/metrics", "/admin/status.json"):
        assert client.get(path).status_code in (401, 403), path
        assert logged_in.get(path).status_code in (401, 403), path


def test_only_the_known_endpoints_skip_csrf():
    exempt = {
        name
        for path, name, view in routes()
        if getattr(view, "csrf_exempt", False)
        # anymail's webhooks check the provider's signature or credentials themselves.
        and not getattr(view, "view_class", view).__module__.startswith("anymail.")
        # The API authenticates each request by its token, never by the session cookie a
        # forged form would carry: a staff session may only read there
        # (tests/api/test_auth.py: test_a_staff_session_may_read_but_not_write).
        and not path.startswith("/api/")
    }
    assert exempt == CSRF_EXEMPT


def test_forms_refuse_posts_without_the_csrf_token(admin_user):
    guarded = Client(enforce_csrf_checks=True)
    guarded.force_login(admin_user)
    campaign = CampaignFactory()
    subscriber = SubscriberFactory()
    token = links.token(links.Purpose.PREFERENCES, subscriber.pk, campaign.pk)
    posts = [
        reverse("admin:campaigns_campaign_change", args=[campaign.pk]),
        reverse("admin:mailer_performancesettings_changelist"),
        reverse("admin:subscribers_subscriberimport_add"),
        reverse("mailer-status"),
        f"/p/{token}/",
        f"/p/{token}/erase/",
    ]
    for path in posts:
        assert guarded.post(path, {"name": "changed"}).status_code == 403, path


def test_link_tokens_are_full_hmacs_that_differ_per_subscriber_and_campaign():
    first, second = SubscriberFactory(), SubscriberFactory()
    token = links.token(links.Purpose.VIEW, first.pk, 7)
    signature = token.rpartition(":")[2]
    assert len(signature) >= 43  # 256 bits: not guessable
    view = links.Purpose.VIEW
    others = {links.token(view, second.pk, 7), links.token(view, first.pk, 8)}
    others.add(links.token(view, first.pk, 0))
    assert all(t.rpartition(":")[2] != signature for t in others)
    # Knowing one subscriber's link does not give the next one's.
    with pytest.raises(links.BadLink):
        links.read(f"{second.pk}.7:{signature}", links.Purpose.VIEW)


def test_nothing_redirects_off_the_site(client, admin_user):
    admin_user.set_password("pw-admin-1")
    admin_user.save()
    response = client.post(
        "/admin/login/?next=https://evil.example/",
        {
            "username": admin_user.username,
            "password": "pw-admin-1",
            "next": "https://evil.example/",
        },
    )
    assert response.status_code == 302 and "evil.example" not in response["Location"]
    # The click redirect goes only to a link of the campaign its signed token names.
    own, other = CampaignFactory(), CampaignFactory()
    link = other.tracked_link_id("https://evil.example/")
    token = links.token(links.Purpose.TRACK, SubscriberFactory().pk, own.pk)
    assert client.get(f"/c/{token}/{link}/").status_code == 404
    # The public forms answer with pages, never a redirect taken from the request.
    mailing_list = MailingListFactory(is_public=True)
    answer = client.post(
        f"/subscribe/{mailing_list.pk}/?next=https://evil.example/",
        {"email": "ada@example.com", "next": "https://evil.example/", **solved_pow()},
    )
    assert answer.status_code == 200
    assert "evil.example" not in answer.get("Location", "")


def test_secrets_come_only_from_the_environment():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0 and "SECRET_KEY" in result.stderr
    settings_source = "".join(p.read_text() for p in (ROOT / "settings").glob("*.py"))
    for value in (os.environ["SECRET_KEY"], "test-password", "hooks:test-secret"):
        assert value not in settings_source


def http_status(url: str, auth: tuple[str, str] | None = None) -> int:
    request = urllib.request.Request(url)  # noqa: S310 (an http URL this test made)
    if auth:
        pair = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        request.add_header("Authorization", f"Basic {pair}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_flower_asks_for_credentials():
    port = free_port()
    flower = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "celery"),
            "-A",
            "settings",
            "flower",
            "--conf=settings/flowerconfig.py",
            "--address=127.0.0.1",
            f"--port={port}",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                anonymous = http_status(f"http://127.0.0.1:{port}/")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "Flower did not answer in 30 s"
                time.sleep(0.2)
        assert anonymous == 401
        user, password = os.environ["FLOWER_BASIC_AUTH"].split(":", 1)
        assert http_status(f"http://127.0.0.1:{port}/", auth=("x", "wrong")) == 401
        assert http_status(f"http://127.0.0.1:{port}/", auth=(user, password)) == 200
    finally:
        flower.terminate()
        flower.wait(timeout=10)
