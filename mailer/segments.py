"""The segment conditions on the engine's own tables (campaigns.segments asks for them by
kind): received a campaign (the ledger), bounced or soft-bounced (the bounces)."""

from __future__ import annotations

from typing import Any

from campaigns.segments import BEHAVIOUR_SQL, Behaviour, Condition
from mailer import folding
from mailer.models import Bounce, Delivery

DELIVERY = Delivery._meta.db_table
BOUNCE = Bounce._meta.db_table


def received(b: Behaviour, n: int) -> tuple[str, dict[str, Any]]:
    # By (campaign, subscriber): the ledger's unique index answers it; or, once the
    # campaign's ledger is folded, its blocks, read once for the whole segment.
    params: dict[str, Any] = {f"other{n}": b.campaign_id}
    sql = f"""(EXISTS (SELECT 1 FROM {DELIVERY} d WHERE d.campaign_id = %(other{n})s
        AND d.subscriber_id = s.id AND d.status = 'sent')
        OR {folding.received_sql(f"other{n}")})"""  # noqa: S608
    return sql, params


def bounced(b: Behaviour, n: int) -> tuple[str, dict[str, Any]]:
    """Bounces (or only soft ones): of a campaign, in the last N days, or since a moment
    (value, e.g. when the first campaign of a resend started). The (subscriber, kind, at)
    index answers it."""
    params: dict[str, Any] = {}
    where = ""
    if b.kind == Condition.Kind.SOFT_BOUNCED:
        where += " AND b.kind = 'soft'"
    if b.campaign_id is not None:
        params[f"other{n}"] = b.campaign_id
        where += f" AND b.campaign_id = %(other{n})s"
    if b.days:
        params[f"days{n}"] = b.days
        where += f" AND b.at >= now() - %(days{n})s * interval '1 day'"
    if b.value:
        params[f"since{n}"] = b.value
        where += f" AND b.at >= %(since{n})s::timestamptz"
    return f"EXISTS (SELECT 1 FROM {BOUNCE} b WHERE b.subscriber_id = s.id{where})", params  # noqa: S608


def register() -> None:
    BEHAVIOUR_SQL[Condition.Kind.RECEIVED] = received
    BEHAVIOUR_SQL[Condition.Kind.BOUNCED] = bounced
    BEHAVIOUR_SQL[Condition.Kind.SOFT_BOUNCED] = bounced
