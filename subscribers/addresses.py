"""Address rules: the one normal form of an email address, its domain, and what makes a
From address usable. Every part of the project that compares, stores or looks up an
address goes through here, so they all agree (stored addresses are lower case)."""

from __future__ import annotations

import functools
import re
from email.utils import parseaddr

from email_validator import EmailNotValidError, validate_email

__all__ = [
    "EmailNotValidError",
    "domain_of",
    "lookup_form",
    "normalise_domain",
    "normalise_email",
    "sender_problem",
]

# Plain ASCII addresses (dot-atom local part, letters-digits-hyphens domain): by far the most
# common kind, and the only one whose check here skips part of email-validator: the domain
# is checked by email-validator once per domain instead of once per address, which makes a
# million-row import about twice as fast. Anything else goes through email-validator whole.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN = re.compile(
    rf"(?P<local>{_ATEXT}(?:\.{_ATEXT})*)@"
    r"(?P<domain>(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63})"
)


@functools.lru_cache(maxsize=10_000)
def _checked_domain(domain: str) -> str:
    return validate_email(f"a@{domain}", check_deliverability=False).domain


def normalise_email(raw: str) -> str:
    """A valid address in the form it is stored (lower case), or EmailNotValidError."""
    address = raw.strip()
    plain = _PLAIN.fullmatch(address)
    if plain is not None and len(plain["local"]) <= 64 and len(address) <= 254:
        return f"{plain['local']}@{_checked_domain(plain['domain'].lower())}".lower()
    result = validate_email(address, check_deliverability=False)
    return result.normalized.lower()


def lookup_form(raw: str) -> str:
    """The form to look a typed address up by, without validating it (stored addresses are
    normalised, so a lookup in any other case would miss them)."""
    return raw.strip().lower()


def normalise_domain(domain: str) -> str:
    """A recipient domain as rate limits and throttles name it."""
    return domain.strip().lower()


def domain_of(email: str) -> str:
    """The recipient domain of an address, in its normal form."""
    return normalise_domain(email.rpartition("@")[2])


def sender_problem(from_email: str) -> str | None:
    """What is wrong with a From address as written, or None."""
    if "\r" in from_email or "\n" in from_email:
        return (
            "The sender contains a line break; write it on one line, e.g. "
            "'Shop <news@shop.example>'."
        )
    _, address = parseaddr(from_email)
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain:
        return (
            f"The sender {from_email!r} is not an address; write it like "
            "'Shop <news@shop.example>' or 'news@shop.example'."
        )
    return None
