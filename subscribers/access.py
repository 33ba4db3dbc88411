"""Per-list access (django-guardian): which lists a staff user may see and send to.

A user with the permission *Can see and use every list* (`subscribers.access_all_lists`, the
Admin role's) or a superuser sees everything. Anyone else sees only the lists they are given,
per user or per group, on a list's *Object permissions* page: *Can view mailing list* shows
the list, its subscribers, its imports and the campaigns that mail only lists they can see;
*Can send campaigns to the list* lets them start or resume a campaign to it (with the
Campaign manager's permission to send at all).

Everything else is scoped through `scope`: a queryset of any model with a path to its lists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _
from guardian.shortcuts import get_objects_for_user

from subscribers.models import MailingList

ALL_LISTS = "subscribers.access_all_lists"
VIEW = "subscribers.view_mailinglist"
SEND = "subscribers.send_to_mailinglist"


def restricted(user: Any) -> bool:
    return not (user.is_superuser or user.has_perm(ALL_LISTS))


def lists_for(user: Any, permission: str = VIEW) -> QuerySet[MailingList]:
    if not restricted(user):
        return MailingList.objects.all()
    granted = get_objects_for_user(
        user, permission, klass=MailingList, accept_global_perms=False, use_groups=True
    )
    return MailingList.objects.filter(pk__in=granted.values("pk"))


def scope(user: Any, rows: QuerySet, path: str, *, every: bool = False) -> QuerySet:
    """The rows the user may see: those with at least one visible list at `path` (with
    `every`: those whose lists are all visible, rows with none included)."""
    if not restricted(user):
        return rows
    visible = lists_for(user)
    if every:
        hidden = MailingList.objects.exclude(pk__in=visible.values("pk"))
        return rows.exclude(**{f"{path}__in": hidden})
    if not path:
        return rows.filter(pk__in=visible.values("pk"))
    matching = rows.model._default_manager.filter(**{f"{path}__in": visible}).values("pk")
    return rows.filter(pk__in=matching)


def refused_lists(user: Any, lists: Iterable[MailingList]) -> list[MailingList]:
    """The lists of `lists` the user may not send to (empty: they may send)."""
    if not restricted(user):
        return []
    allowed = set(lists_for(user, SEND).values_list("pk", flat=True))
    return [m for m in lists if m.pk not in allowed]


class ScopedToLists:
    """An admin whose rows, and whose list choices, are those of the user's lists.

    list_path: the lookup from the model to its lists ("" for MailingList itself);
    every_list: a row is shown only when all its lists are visible (campaigns)."""

    list_path = ""
    every_list = False

    def get_queryset(self, request: Any) -> QuerySet:
        rows = super().get_queryset(request)  # type: ignore[misc]
        return scope(request.user, rows, self.list_path, every=self.every_list)

    def formfield_for_foreignkey(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if db_field.related_model is MailingList:
            kwargs["queryset"] = lists_for(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: Any, **kwargs: Any) -> Any:
        if db_field.related_model is MailingList:
            kwargs["queryset"] = lists_for(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


class ScopedRelatedFilter(admin.RelatedFieldListFilter):
    """A filter of related rows (lists, campaigns) that offers only those the user may see,
    as the related model's admin scopes them: a filter's choices must not name the rest."""

    def field_choices(self, field: Any, request: Any, model_admin: Any) -> list:
        related_admin = model_admin.admin_site._registry.get(field.related_model)
        if related_admin is None:
            return super().field_choices(field, request, model_admin)
        return [(row.pk, str(row)) for row in related_admin.get_queryset(request)]


class OnListFilter(admin.SimpleListFilter):
    """Subscribers on one list (of those the user may see), joined through their
    subscription to it (one at most: no duplicates, so no DISTINCT, which filtering by the
    many-to-many field makes the admin add and which sorts every subscriber of the list).
    The changelist then lists them by their subscription's last change, newest first
    (SubscriberAdmin.get_ordering), which the (list, updated_at) index gives in order: ordered
    by address or id instead, PostgreSQL may walk the whole address index to find a list's
    first hundred (seconds at millions, when the list is a block of addresses)."""

    title = _("mailing list")
    parameter_name = "list"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(row.pk), str(row)) for row in lists_for(request.user)]

    def queryset(self, request: Any, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if not value:
            return queryset
        if not value.isdigit() or not lists_for(request.user).filter(pk=value).exists():
            return queryset.none()  # a list the user may not see says nothing about anyone
        return queryset.filter(subscriptions__mailing_list_id=int(value))
