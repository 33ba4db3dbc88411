"""A marketer's day in a real browser: headless Chromium (the system's, never a downloaded one)
driven by Playwright against the running system: the web app under gunicorn, sender and
dispatcher workers, beat, and the mailbox (an SMTP server with a web view) that receives
every message. Each journey saves screenshots in docs/screenshots, which the README shows."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections

from tests.e2e.conftest import Processes, processes  # noqa: F401 (the real processes fixture)
from tests.factories import SmtpServerFactory
from tests.smtp_sink import free_port

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "a-marketer's-password-1"


def chromium() -> str:
    found = (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )
    if not found:
        pytest.fail(
            "Chromium is not installed: install the Debian package `chromium` (./dev test does "
            "this itself when run as root), or set CHROMIUM to a Chromium executable."
        )
    return found


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's own sandbox cannot start as root (CI runs as root).
        browser = playwright.chromium.launch(executable_path=chromium(), args=["--no-sandbox"])
        yield browser
        browser.close()


@dataclass
class Site:
    base: str  # the web app
    mailbox: str  # the mailbox's web view
    processes: Processes
    username: str = "marketer"
    password: str = PASSWORD


@pytest.fixture
def site(processes, tmp_path) -> Site:  # noqa: F811
    smtp_port, http_port = free_port(), free_port()
    processes.start(
        "mailbox",
        sys.executable,
        "-m",
        "devstack.mailbox",
        "--smtp-port",
        str(smtp_port),
        "--http-port",
        str(http_port),
        "--db",
        str(tmp_path / "mailbox.sqlite3"),
        ready="mailbox: SMTP",
    )
    SmtpServerFactory(name="mailbox", port=smtp_port)
    processes.env["SMTP_URL"] = f"smtp://127.0.0.1:{smtp_port}"
    processes.env["STATIC_ROOT"] = str(tmp_path / "static")
    processes.manage("collectstatic", "--no-input", "-v", "0")
    base = processes.web()
    processes.system(senders=1, concurrency=2)
    User.objects.create_superuser("marketer", "marketer@shop.example", PASSWORD)
    return Site(base=base, mailbox=f"http://127.0.0.1:{http_port}", processes=processes)


@pytest.fixture
def page(site, browser, monkeypatch) -> Iterator:
    # Playwright's sync API keeps an event loop running in this thread while the browser is
    # open; the ORM calls the test makes meanwhile are ordinary blocking calls, which Django
    # would refuse next to a running loop. In this order the system and its database are set
    # up before the browser opens and torn down after it closes, and the permission holds for
    # the test's own process only (the system's processes have started without it).
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    context = browser.new_context(viewport={"width": 1280, "height": 820}, accept_downloads=True)
    context.set_default_timeout(20_000)
    # The admin's side navigation starts folded: pages keep their full width.
    context.add_init_script("localStorage.setItem('django.admin.navSidebarIsOpen', 'false')")
    page = context.new_page()
    yield page
    context.close()
    # Beside a running event loop, Django keeps a separate connection for this context:
    # close it, or the test database cannot be dropped at the end.
    connections.close_all()


def login(page, site: Site) -> None:
    page.goto(f"{site.base}/admin/login/")
    page.fill("#id_username", site.username)
    page.fill("#id_password", site.password)
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    assert "/admin/login/" not in page.url


def write_content(page, selector: str, text: str) -> None:
    """Puts the whole text in a field the content editor enhanced (workbench/editor), as if
    typed there: the editor's own surface replaces the textarea on the page."""
    page.wait_for_function(
        "(selector) => document.querySelector(selector).contentEditor", arg=selector
    )
    page.evaluate(
        "([selector, text]) => document.querySelector(selector).contentEditor.setValue(text)",
        [selector, text],
    )


# The main pages must load within this on these machines (navigation start to load event).
LOAD_LIMIT_MS = 1000


def timing(page) -> dict:
    """Navigation timing of the page just loaded, and the bytes it took (page and assets)."""
    return page.evaluate(
        """() => {
          const nav = performance.getEntriesByType("navigation")[0];
          const assets = performance.getEntriesByType("resource");
          const bytes = [nav, ...assets].reduce((n, e) => n + (e.encodedBodySize || 0), 0);
          return {ms: nav.loadEventEnd - nav.startTime, bytes: bytes, requests: assets.length + 1};
        }"""
    )


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


def mark_page(page) -> None:
    """Marks this page load: `reloaded` tells whether the browser loaded a new page since."""
    page.evaluate("window.__sameLoad = true")


def reloaded(page) -> bool:
    return not page.evaluate("window.__sameLoad === true")
