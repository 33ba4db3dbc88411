"""Who a campaign goes to: enabled subscribers of its lists (confirmed where the list is
double opt-in, never unsubscribed), each address once, narrowed by its attribute conditions.

The same SQL counts the audience in the admin before the start and writes it to the ledger
at the start (mailer.ledger.snapshot), so the count shown is the count sent.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.db import connection

from campaigns.segments import Behaviour, behaviour_sql

# A subscription that gets the list's mail: confirmed, or unconfirmed on a single opt-in list
# (Subscription.is_active says the same in Python); `sub` joined to its list `l`.
RECEIVES_MAIL = "(sub.status = 'confirmed' OR (sub.status = 'unconfirmed' AND l.opt_in = 'single'))"

BASE_WHERE = f"""
s.status = 'enabled'
AND EXISTS (
    SELECT 1
    FROM subscribers_subscription sub
    JOIN subscribers_mailinglist l ON l.id = sub.mailing_list_id
    WHERE sub.subscriber_id = s.id
      AND sub.mailing_list_id IN (
        SELECT mailinglist_id FROM campaigns_campaign_lists WHERE campaign_id = %(campaign)s
      )
      AND {RECEIVES_MAIL}
)
"""  # noqa: S608 (fixed SQL only)

_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def condition_sql(operator: str, attribute: str, value: str, n: int) -> tuple[str, dict[str, Any]]:
    """One condition as SQL over s.attributes, with named parameters (never interpolated)."""
    a, v = f"attr{n}", f"value{n}"
    params: dict[str, Any] = {a: attribute, v: value}
    text = f"(s.attributes ->> %({a})s)"
    if operator == "equals":
        return f"{text} = %({v})s", params
    if operator == "not_equals":
        return f"{text} IS DISTINCT FROM %({v})s", params
    if operator == "contains":
        return f"strpos(lower({text}), lower(%({v})s)) > 0", params
    if operator == "exists":
        return f"(s.attributes ? %({a})s AND {text} <> '')", {a: attribute}
    if operator == "not_exists":
        return f"NOT (s.attributes ? %({a})s AND {text} <> '')", {a: attribute}
    if operator in ("gt", "lt"):
        sign = ">" if operator == "gt" else "<"
        if _NUMBER.match(value.strip()):
            # Numbers compare as numbers ("9" < "10"), whether stored as JSON numbers or as
            # text from a CSV; values that are not numbers do not match.
            numeric = f"(CASE WHEN {text} ~ '^-?[0-9]+(\\.[0-9]+)?$' THEN {text}::numeric END)"
            params[v] = value.strip()
            return f"{numeric} {sign} %({v})s::numeric", params
        # Anything else (dates as 2026-11-29, names) compares as text.
        return f"{text} {sign} %({v})s", params
    raise ValueError(f"unknown condition operator {operator!r}")


def audience_where(
    campaign_id: int,
    conditions: list[tuple[str, str, str]],
    behaviours: Sequence[Behaviour] = (),
) -> tuple[str, dict]:
    """conditions: (attribute, operator, value) triples; behaviours: what subscribers did
    (campaigns.segments); all of them must hold."""
    clauses = [BASE_WHERE]
    params: dict[str, Any] = {"campaign": campaign_id}
    for n, (attribute, operator, value) in enumerate(conditions):
        clause, extra = condition_sql(operator, attribute, value, n)
        clauses.append(clause)
        params.update(extra)
    for n, behaviour in enumerate(behaviours, start=len(conditions)):
        clause, extra = behaviour_sql(behaviour, n)
        clauses.append(clause)
        params.update(extra)
    return "\nAND ".join(clauses), params


def audience_count(
    campaign_id: int,
    conditions: list[tuple[str, str, str]],
    behaviours: Sequence[Behaviour] = (),
) -> int:
    where, params = audience_where(campaign_id, conditions, behaviours)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM subscribers_subscriber s WHERE {where}", params)  # noqa: S608
        return cursor.fetchone()[0]
