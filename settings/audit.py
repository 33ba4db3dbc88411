"""The audit trail (django-auditlog): who changed what, and when. Readable in the admin under
*Audit log*, never editable there.

Saved changes to campaigns, layouts, lists, imports, SMTP servers, domain limits, the
settings rows, users and groups are recorded as they are saved (`register_models`, from
MailerConfig.ready). What is not a plain save is recorded by the service that does it, with
`record`: a campaign's status changes (conditional UPDATEs), exports, blocklisting and
erasure. An erased subscriber's entry names only their id: the trail keeps no personal data
the erasure removed. In a request the actor is the logged-in user (AuditlogMiddleware); a
worker names it with `acting_as`.
"""

from __future__ import annotations

from typing import Any

from auditlog.context import set_actor
from auditlog.models import LogEntry
from auditlog.registry import auditlog
from django.apps import apps
from django.db.models import Model

acting_as = set_actor

# Model, and the fields whose changes are worth a line (counters and timestamps are not).
AUDITED: dict[str, dict[str, Any]] = {
    "campaigns.Campaign": {
        "include_fields": [
            "name",
            "subject",
            "body",
            "format",
            "template",
            "from_email",
            "smtp_server",
            "rate_limit",
            "send_at",
            "track_opens",
            "track_clicks",
        ],
        "m2m_fields": {"lists"},
    },
    "campaigns.Template": {"include_fields": ["name", "body"]},
    "subscribers.MailingList": {},
    "subscribers.SubscriberImport": {
        "include_fields": ["file", "mode", "mailing_list", "status", "imported", "skipped"]
    },
    "mailer.SmtpServer": {},
    "mailer.DomainThrottle": {},
    "mailer.PerformanceSettings": {},
    "mailer.BounceSettings": {},
    "auth.User": {"exclude_fields": ["password", "last_login"], "m2m_fields": {"groups"}},
    "auth.Group": {"m2m_fields": {"permissions"}},
}


def register_models() -> None:
    for label, options in AUDITED.items():
        model = apps.get_model(label)
        if not auditlog.contains(model):
            auditlog.register(model, **options)


def record(
    instance: Model,
    event: str,
    *,
    changes: dict[str, list[Any]] | None = None,
    label: str | None = None,
    deleted: bool = False,
    **details: Any,
) -> None:
    """A line in the trail for something other than a plain save (`event` says what)."""
    action = LogEntry.Action.UPDATE if changes else LogEntry.Action.ACCESS
    fields: dict[str, Any] = {
        "action": LogEntry.Action.DELETE if deleted else action,
        "changes": changes or {},
        "additional_data": {"event": event, **details},
    }
    if label is not None:
        fields["object_repr"] = label
    LogEntry.objects.log_create(instance, force_log=True, **fields)
