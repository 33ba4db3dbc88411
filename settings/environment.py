"""Reading the environment: every variable the project uses is declared here, once.

A missing or malformed value stops the process at start-up with a message that names the
variable and says what a valid value looks like, instead of failing later in a worker.
"""

from __future__ import annotations

from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()

# The spellings django-environ reads as true, and those it is given for false here.
_TRUE = {value.lower() for value in environ.Env.BOOLEAN_TRUE_STRINGS}
_FALSE = {"0", "false", "no", "off", "n", "f", ""}

# name -> one-line description; `.env.example` and `compose.yaml` are checked against this.
VARIABLES: dict[str, str] = {}


def _declare(name: str, description: str) -> None:
    VARIABLES[name] = description


def _fail(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"{name}={value!r} is not valid: expected {expected}.")


def read_str(name: str, description: str, default: str | None = None) -> str:
    _declare(name, description)
    if default is None and name not in env:
        raise ImproperlyConfigured(
            f"{name} is not set. {description} Set it in the environment (see .env.example)."
        )
    return env.str(name, default=default)


# What .env.example holds where a secret goes: a deployment that kept it is not protected.
PLACEHOLDER = "change-me"
_HOW_TO_MAKE_ONE = (
    "python -c 'import secrets; print(secrets.token_urlsafe(50))' prints a random one"
)


def read_secret(
    name: str, description: str, *, default: str | None = None, min_length: int = 0
) -> str:
    """A secret: never the placeholder of .env.example, and at least `min_length` long."""
    value = read_str(name, description, default)
    if value and PLACEHOLDER in value.lower():
        raise ImproperlyConfigured(
            f"{name} is still the placeholder of .env.example; set it to a long random "
            f"value ({_HOW_TO_MAKE_ONE})."
        )
    if value and len(value) < min_length:
        raise ImproperlyConfigured(
            f"{name} is {len(value)} characters long; use at least {min_length} random "
            f"characters ({_HOW_TO_MAKE_ONE})."
        )
    return value


def read_bool(name: str, description: str, default: bool) -> bool:
    _declare(name, description)
    raw = env.str(name, default=str(default)).strip().lower()
    # django-environ reads anything it does not know as false; a typo must not turn a
    # setting off without a word.
    if raw not in _TRUE | _FALSE:
        raise _fail(name, raw, "true or false")
    return env.bool(name, default=default)


def read_int(name: str, description: str, default: int, minimum: int = 0) -> int:
    _declare(name, description)
    try:
        value = env.int(name, default=default)
    except ValueError:
        raise _fail(name, env.str(name), f"a whole number >= {minimum}") from None
    if value < minimum:
        raise _fail(name, str(value), f"a whole number >= {minimum}")
    return value


def read_list(name: str, description: str, default: str = "") -> list[str]:
    _declare(name, description)
    return [item.strip() for item in env.list(name, default=default.split(",")) if item.strip()]


def read_choice(name: str, description: str, default: str, choices: tuple[str, ...]) -> str:
    _declare(name, description)
    value = env.str(name, default=default).strip()
    if value not in choices:
        raise _fail(name, value, "one of " + ", ".join(choices))
    return value


def read_db_url(name: str, description: str) -> dict[str, Any]:
    raw = read_str(name, description)
    try:
        config = env.db_url_config(raw)
    except Exception as error:
        raise _fail(
            name, raw, f"a URL like postgres://user:password@host:5432/dbname ({error})"
        ) from None
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise _fail(name, raw, "a postgres:// URL (PostgreSQL is the only supported database)")
    return config


def read_redis_url(name: str, description: str) -> str:
    raw = read_str(name, description)
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise _fail(name, raw, "a URL like redis://host:6379/0")
    return raw


def read_email_url(name: str, description: str, default: str) -> dict[str, Any]:
    raw = read_str(name, description, default=default)
    try:
        config = env.email_url_config(raw)
    except Exception as error:
        raise _fail(
            name, raw, f"a URL like smtp://user:password@host:587 or smtp+tls://… ({error})"
        ) from None
    if not config.get("EMAIL_HOST"):
        raise _fail(name, raw, "a URL with a host, like smtp://mail.example.com:25")
    return config


def read_basic_auth(name: str, description: str) -> str:
    raw = read_str(name, description)
    user, _, password = raw.partition(":")
    if not user or not password:
        raise _fail(name, "***", "user:password, both non-empty")
    if PLACEHOLDER in password.lower():
        raise ImproperlyConfigured(
            f"{name}'s password is still the placeholder of .env.example; set a long random "
            f"one ({_HOW_TO_MAKE_ONE})."
        )
    return raw
