"""Where a webhook may go: http(s) URLs whose host resolves only to public addresses, unless
WEBHOOKS_ALLOW_PRIVATE_URLS is set. Checked when an endpoint is saved and again at each
delivery, which then connects to the address it checked (a name that resolves elsewhere by
then, DNS rebinding, cannot send it into the server's own network)."""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings


class UnsafeURL(ValueError):
    """The URL may not receive webhooks; the message says why and what to do."""


def checked_address(url: str) -> str:
    """The IP address to connect to for the URL, or UnsafeURL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeURL(f"{url!r} is not an http:// or https:// URL with a host.")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise UnsafeURL(f"The host {parts.hostname} does not resolve ({error}).") from error
    addresses = [ipaddress.ip_address(info[4][0]) for info in found]
    if not settings.WEBHOOKS_ALLOW_PRIVATE_URLS:
        for address in addresses:
            if not address.is_global:
                raise UnsafeURL(
                    f"{parts.hostname} resolves to {address}, a loopback, private or reserved "
                    "address; webhooks go to public addresses only (set "
                    "WEBHOOKS_ALLOW_PRIVATE_URLS=true to allow a service on your network)."
                )
    return str(addresses[0])
