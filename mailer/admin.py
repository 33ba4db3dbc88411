from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

from mailer.models import Delivery, DomainThrottle, PerformanceSettings, SmtpServer


@admin.register(SmtpServer)
class SmtpServerAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "host",
        "port",
        "security",
        "rate_limit",
        "max_connections",
        "is_enabled",
    ]
    list_filter = ["is_enabled", "security"]
    search_fields = ["name", "host"]


@admin.register(DomainThrottle)
class DomainThrottleAdmin(admin.ModelAdmin):
    list_display = ["domain", "rate_limit"]
    search_fields = ["domain"]


@admin.register(PerformanceSettings)
class PerformanceSettingsAdmin(admin.ModelAdmin):
    """One row: the changelist goes straight to its form."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        PerformanceSettings.load()
        return HttpResponseRedirect(reverse("admin:mailer_performancesettings_change", args=[1]))


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    """The ledger is written by the engine only; here it can be searched and read."""

    list_display = ["email", "campaign", "status", "attempts", "sent_at", "reply"]
    list_filter = ["status", "campaign"]
    search_fields = ["email"]
    list_select_related = ["campaign"]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
