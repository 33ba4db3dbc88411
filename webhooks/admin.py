"""Webhooks in the admin: endpoints (URL, events, signing secret) and the delivery log, with
Replay. Each needs its model's permissions, as every admin page does."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from settings import queues
from webhooks import delivery
from webhooks.models import EVENTS, Delivery, Endpoint


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    list_display = ["name", "url", "event_list", "is_enabled", "created_at"]
    list_filter = ["is_enabled"]
    fields = ["name", "url", "events", "is_enabled", "secret"]
    readonly_fields = ["secret"]

    @admin.display(description=_("Events"))
    def event_list(self, obj: Endpoint) -> str:
        return ", ".join(obj.events) if obj.events else "every event"

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.base_fields["events"].help_text += " Events: " + ", ".join(EVENTS) + "."
        return form


@admin.action(description=_("Replay: send the event to the endpoint again"), permissions=["change"])
def replay(modeladmin, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
    count = delivery.replay(list(queryset))
    queues.enqueue_on_commit(queues.DELIVER_WEBHOOKS)
    modeladmin.message_user(
        request, _("Queued %(count)s delivery(ies) again.") % {"count": count}, messages.SUCCESS
    )


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "delivered_at",
        "created_at",
    ]
    list_filter = ["status", "endpoint", "event__kind"]
    list_select_related = ["endpoint", "event"]
    actions = [replay]
    readonly_fields = [
        "endpoint",
        "event",
        "kind",
        "payload",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "last_response",
        "delivered_at",
        "created_at",
    ]
    fields = tuple(readonly_fields)

    @admin.display(description=_("Event"))
    def kind(self, obj: Delivery) -> str:
        return obj.event.kind

    @admin.display(description=_("Payload"))
    def payload(self, obj: Delivery) -> str:
        return format_html("<pre>{}</pre>", json.dumps(obj.event.payload, indent=2))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # deliveries come from events
