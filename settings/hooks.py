"""Settings of bounce and complaint webhooks coming in, and of webhooks going out (read by
settings.base, which every other module reads them from)."""

from __future__ import annotations

from settings.environment import read_bool, read_secret, read_str

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
