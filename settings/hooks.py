"""Settings of bounce and complaint webhooks coming in, and of webhooks going out (read by
settings.base, which every other module reads them from)."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from settings import queues
from settings.environment import PLACEHOLDER, read_bool, read_int, read_secret, read_str

# Providers' tracking webhooks, through django-anymail: /webhooks/anymail/<provider>/tracking/
ANYMAIL = {
    "WEBHOOK_SECRET": read_secret(
        "ANYMAIL_WEBHOOK_SECRET",
        "user:password that bounce webhooks from providers (SES, SendGrid, Postmark, …) send "
        "as HTTP basic auth; empty turns those webhooks off.",
        default="",
    ),
    "MAILGUN_WEBHOOK_SIGNING_KEY": read_str(
        "MAILGUN_WEBHOOK_SIGNING_KEY",
        "Mailgun's webhook signing key, to check its webhooks (Mailgun only).",
        default="",
    ),
    # Answering SNS's subscription request needs an outgoing request to AWS; on by default
    # in anymail, it only follows requests that carry the webhook secret.
    "AMAZON_SES_AUTO_CONFIRM_SNS_SUBSCRIPTIONS": True,
}
BOUNCE_WEBHOOK_TOKEN = read_secret(
    "BOUNCE_WEBHOOK_TOKEN",
    "Bearer token for the generic bounce endpoint /webhooks/bounces/; empty turns it off.",
    default="",
)
WEBHOOKS_ALLOW_PRIVATE_URLS = read_bool(
    "WEBHOOKS_ALLOW_PRIVATE_URLS",
    "Let outgoing webhook endpoints be on loopback or private addresses (a service beside "
    "this one); off, such URLs are refused, so that an admin user cannot make the server "
    "call its own network.",
    default=False,
)

# The bounce mailbox (mailer.mailbox), for installs whose provider sends no webhooks: where
# bounces and complaints arrive as mail (the campaigns' envelope sender, Return-Path).
_MAILBOX_SCHEMES = {
    "imap": ("imap", "none", 143),
    "imap+starttls": ("imap", "starttls", 143),
    "imaps": ("imap", "tls", 993),
    "pop3": ("pop3", "none", 110),
    "pop3+starttls": ("pop3", "starttls", 110),
    "pop3s": ("pop3", "tls", 995),
}


def _mailbox(raw: str) -> dict[str, Any] | None:
    if not raw:
        return None
    url = urlsplit(raw)
    expected = (
        "a URL like imaps://user:password@mail.example.com/INBOX or "
        "pop3s://user:password@mail.example.com (schemes: " + ", ".join(_MAILBOX_SCHEMES) + ")"
    )
    if url.scheme not in _MAILBOX_SCHEMES or not url.hostname or not url.username:
        raise ImproperlyConfigured(f"BOUNCE_MAILBOX_URL is not valid: expected {expected}.")
    protocol, security, port = _MAILBOX_SCHEMES[url.scheme]
    if PLACEHOLDER in unquote(url.password or "").lower():
        raise ImproperlyConfigured(
            "BOUNCE_MAILBOX_URL's password is still the placeholder of .env.example."
        )
    return {
        "protocol": protocol,
        "security": security,
        "host": url.hostname,
        "port": url.port or port,
        "user": unquote(url.username),
        "password": unquote(url.password or ""),
        "folder": unquote(url.path.lstrip("/")) or "INBOX",
    }


BOUNCE_MAILBOX = _mailbox(
    read_str(
        "BOUNCE_MAILBOX_URL",
        "The bounce mailbox to read: imaps://user:password@host/INBOX (imap, imap+starttls, "
        "imaps, pop3, pop3+starttls, pop3s); empty turns the mailbox reader off.",
        default="",
    )
)
BOUNCE_MAILBOX_KEEP_IN = read_str(
    "BOUNCE_MAILBOX_KEEP_IN",
    "IMAP folder that read messages are moved to (created if missing); empty deletes them. "
    "POP3 always deletes. Messages that were not applied are kept in the admin either way.",
    default="",
)
BOUNCE_MAILBOX_INTERVAL = read_int(
    "BOUNCE_MAILBOX_INTERVAL", "Seconds between two readings of the bounce mailbox.", 60, 5
)
MAILBOX_BEAT = (
    {
        "read-bounce-mailbox": {
            "task": queues.READ_BOUNCE_MAILBOX,
            "schedule": float(BOUNCE_MAILBOX_INTERVAL),
            "options": {"expires": BOUNCE_MAILBOX_INTERVAL},
        }
    }
    if BOUNCE_MAILBOX
    else {}
)
