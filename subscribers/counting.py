"""Counting big tables without reading them: the admin's changelists and the list counts.

A changelist's paginator counts its rows once per page; at ten million subscribers or fifty
million ledger rows a full `COUNT(*)` takes seconds. `EstimatedPaginator` gives the whole
table's size from PostgreSQL's statistics (`pg_class.reltuples`, kept by ANALYZE and
autovacuum) and marks it as an estimate; a filtered or searched page counts at most
`COUNT_CAP` + 1 rows and says "more than" when there are more.

The subscribers of each list, by status, are kept in `ListCount` by statement-level triggers
on the subscriptions table (migration subscribers 0011): every statement that inserts,
updates or deletes subscriptions adds its change once, grouped by list and status, so an
import of a million rows costs one small upsert, not a million.
"""

from __future__ import annotations

from functools import cached_property

from django.core.paginator import Paginator
from django.db import connections
from django.db.models import F, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from subscribers.models import ListCount, MailingList, Subscription

# A filtered changelist counts at most this many rows (then shows "more than 10,000").
COUNT_CAP = 10_000


def estimated_rows(queryset: QuerySet) -> int:
    """The planner's estimate of the rows in the queryset's table (-1: never analyzed)."""
    table = queryset.model._meta.db_table
    with connections[queryset.db].cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
    return int(row[0]) if row else -1


class EstimatedPaginator(Paginator):
    """A paginator whose count never reads more than COUNT_CAP + 1 rows."""

    estimated = False  # the count is the planner's estimate of the whole table
    capped = False  # there are more rows than the count

    @cached_property
    def count(self) -> int:
        rows = self.object_list
        if not isinstance(rows, QuerySet):
            return super().count
        unfiltered = not rows.query.where and not rows.query.distinct
        if unfiltered:
            estimate = estimated_rows(rows)
            if estimate > COUNT_CAP:
                self.estimated = True
                return estimate
        # In the page's order: the index that gives the page's rows gives these too.
        counted = rows[: COUNT_CAP + 1].count()
        if counted > COUNT_CAP:
            self.capped = True
            return COUNT_CAP
        return counted


def _kept(status: str) -> Coalesce:
    count = ListCount.objects.filter(list_id=OuterRef("pk"), status=status).values("count")
    return Coalesce(Subquery(count[:1]), 0)


def with_counts(lists: QuerySet[MailingList]) -> QuerySet[MailingList]:
    """Lists with their kept counts: n_confirmed, n_unconfirmed, n_unsubscribed, and
    subscriber_count (every subscription not unsubscribed, as listmonk counts)."""
    status = Subscription.Status
    return lists.annotate(
        n_confirmed=_kept(status.CONFIRMED),
        n_unconfirmed=_kept(status.UNCONFIRMED),
        n_unsubscribed=_kept(status.UNSUBSCRIBED),
    ).annotate(subscriber_count=F("n_confirmed") + F("n_unconfirmed"))
