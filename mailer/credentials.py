"""Where an SMTP server's password may come from and where it may go.

A password comes only from an environment variable named SMTP_PASSWORD_*: a server whose
variable could be any name would mail out SECRET_KEY or DATABASE_URL to whatever host it
names. And it never crosses the network unencrypted: without TLS, only a server on this
machine may log in.
"""

from __future__ import annotations

import ipaddress
import os
import re

from django.core.validators import RegexValidator

# The only environment variables a server's password may come from: anything else (SECRET_KEY,
# DATABASE_URL) would be sent to whatever host the server names.
PASSWORD_ENV_PREFIX = "SMTP_PASSWORD_"  # noqa: S105 (a name, not a password)
_PASSWORD_ENV = re.compile(rf"{PASSWORD_ENV_PREFIX}[A-Z0-9_]+")
PASSWORD_ENV_RULE = RegexValidator(
    rf"^{_PASSWORD_ENV.pattern}\Z",
    f"The password variable must be named {PASSWORD_ENV_PREFIX}<NAME> in capitals, e.g. "
    f"{PASSWORD_ENV_PREFIX}PROVIDER_A: only such variables are ever sent to an SMTP server.",
)


def is_loopback(host: str) -> bool:
    """Whether the host is this machine (a password may travel unencrypted only to it)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost" or host.endswith(".localhost")


def plain_login_problem(*, name: str, host: str, security: str, username: str) -> str | None:
    """Why the server may not log in, or None: a password never crosses the network unencrypted."""
    if username and security == "none" and not is_loopback(host):
        return (
            f"SMTP server {name} would send its password over an unencrypted connection to "
            f"{host}: set security to STARTTLS or TLS (only a server on this machine, "
            "127.0.0.1 or localhost, may log in without TLS)."
        )
    return None


def password_from(variable: str) -> str:
    """The password in `variable`, read only when its name has the allowed form (checked
    where it is read as well as on save: a row may have been written around the form)."""
    if not variable or not _PASSWORD_ENV.fullmatch(variable):
        return ""
    return os.environ.get(variable, "")
