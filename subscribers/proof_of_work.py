"""A proof-of-work on the public subscribe form (the ALTCHA scheme, with no third-party
service): the page's script fetches a signed challenge, finds the number whose SHA-256 with
the challenge's salt gives the challenge, and sends it with the form. A person's browser
spends a fraction of a second once; a script posting the form thousands of times pays that
for every post. Each solution is accepted once (Redis remembers it until it expires).

The client side is subscribers/static/subscribers/proof-of-work.js; the difficulty is
SUBSCRIBE_POW_MAX_NUMBER (about half that many hashes on average).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import json
from typing import Any

import altcha
from django.conf import settings

from settings.redis import get_redis, key

FIELD = "altcha"
LIFETIME = datetime.timedelta(minutes=20)


class NotSolved(ValueError):
    """The form came without a valid, fresh, unused solution."""


def _hmac_key() -> str:
    return hashlib.sha256(f"subscribers.proof-of-work{settings.SECRET_KEY}".encode()).hexdigest()


def challenge() -> dict[str, Any]:
    """A new challenge, as the page's script (and ALTCHA's widget) reads it."""
    made = altcha.create_challenge_v1(
        altcha.ChallengeOptionsV1(
            algorithm="SHA-256",
            max_number=settings.SUBSCRIBE_POW_MAX_NUMBER,
            hmac_key=_hmac_key(),
            expires=datetime.datetime.now(datetime.UTC) + LIFETIME,
        )
    )
    return made.to_dict()


def check(payload: str) -> None:
    """Accept a solution once; NotSolved says why not."""
    if not payload:
        raise NotSolved("the anti-spam check did not run")
    try:
        decoded = json.loads(base64.b64decode(payload, validate=True))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise NotSolved("the anti-spam answer is not readable") from error
    if not isinstance(decoded, dict):
        raise NotSolved("the anti-spam answer is not readable")
    ok, problem = altcha.verify_solution_v1(payload, _hmac_key(), check_expires=True)
    if not ok:
        raise NotSolved(
            "the anti-spam answer is wrong or too old" + (f" ({problem})" if problem else "")
        )
    seconds = int(LIFETIME.total_seconds())
    if not get_redis().set(key("pow-used", str(decoded["signature"])), 1, nx=True, ex=seconds):
        raise NotSolved("this anti-spam answer was used already")


def solve(found: dict[str, Any]) -> str:
    """The answer a browser sends for a challenge (for tests, benchmarks and scripts that
    subscribe people on purpose)."""
    solution = altcha.solve_challenge_v1(
        found["challenge"], found["salt"], "SHA-256", int(found["maxNumber"])
    )
    if solution is None:
        raise NotSolved("the challenge has no solution")
    answer = {**{k: found[k] for k in ("algorithm", "challenge", "salt", "signature")}}
    answer["number"] = solution.number
    return base64.b64encode(json.dumps(answer).encode()).decode()
