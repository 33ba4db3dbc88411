"""API users and their tokens: made (the secret shown once), checked, revoked."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone
from guardian.shortcuts import assign_perm

from api.models import ApiToken
from settings.redis import get_redis, key
from subscribers import access
from subscribers.models import MailingList

# How often a token's last use is written, at most: not on every request.
LAST_USED_EVERY = 60


class ApiUserError(ValueError):
    """An API user that cannot be made as asked; the message says why."""


def digest(secret: str) -> str:
    # A token is 32 random bytes: a fast hash is enough (nothing to guess by brute force).
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(*, user) -> str:
    """A new secret for the user (any earlier one stops working); returns it, once."""
    secret = secrets.token_urlsafe(32)
    ApiToken.objects.update_or_create(
        user=user,
        defaults={"digest": digest(secret), "hint": secret[:6], "revoked_at": None},
    )
    return secret


@transaction.atomic
def api_user_create(*, name: str, role: str, list_ids: Iterable[int] = ()) -> tuple[Any, str]:
    """A user that logs in only with its token (no password, no admin), in a role, given
    the lists it may use (view and send to); returns the user and the token's secret."""
    User = get_user_model()
    if User.objects.filter(username=name).exists():
        raise ApiUserError(f"A user named {name!r} exists already; choose another name.")
    group = Group.objects.filter(name=role).first()
    if group is None:
        roles = ", ".join(Group.objects.order_by("name").values_list("name", flat=True))
        raise ApiUserError(f"There is no role {role!r}. Roles: {roles}.")
    lists = list(MailingList.objects.filter(pk__in=list(list_ids)))
    missing = set(list_ids) - {m.pk for m in lists}
    if missing:
        raise ApiUserError(f"No list has the id {', '.join(map(str, sorted(missing)))}.")
    user = User.objects.create(username=name, is_staff=False)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    user.groups.add(group)
    for mailing_list in lists:
        assign_perm(access.VIEW, user, mailing_list)
        assign_perm(access.SEND, user, mailing_list)
    return user, issue_token(user=user)


def revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=timezone.now())


def authenticate(username: str, secret: str):
    """The API user whose token this is, or None."""
    token = (
        ApiToken.objects.select_related("user")
        .filter(digest=digest(secret), user__username=username)
        .first()
    )
    if token is None or not token.active or not hmac.compare_digest(token.digest, digest(secret)):
        return None
    now = timezone.now()
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def wait_for_token(user_id: int, per_minute: int) -> int:
    """Seconds until this API user may make another request (0: now, and it is counted).
    A fixed one-minute window in Redis, so the limit holds across every web process."""
    now = int(time.time())
    name = key("api-limit", user_id, now // 60)
    pipe = get_redis().pipeline(transaction=False)
    pipe.incr(name)
    pipe.expire(name, 60)
    count, _ = pipe.execute()
    return 0 if count <= per_minute else 60 - now % 60
