from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.validators import MinValueValidator
from django.db.models import Sum
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from campaigns.models import Campaign
from mailer import heartbeats, mailbox
from mailer.models import (
    Bounce,
    BounceSettings,
    Delivery,
    DomainThrottle,
    LedgerBlock,
    MailboxReport,
    PerformanceSettings,
    SmtpServer,
    TxMessage,
)
from mailer.sender import SETTINGS_EVERY
from mailer.two_factor import LoginForm
from subscribers.access import ScopedRelatedFilter, ScopedToLists, restricted, scope
from subscribers.addresses import lookup_form
from subscribers.counting import EstimatedPaginator

# The login form asks for an authenticator code of users who turned two-factor login on.
admin.site.login_form = LoginForm


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


class PerformanceSettingsForm(forms.ModelForm):
    class Meta:
        model = PerformanceSettings
        fields = [
            "max_running_campaigns",
            "message_rate",
            "default_campaign_rate",
            "batch_size",
            "max_send_errors",
            "max_attempts",
            "retry_delay",
            "retry_unknown",
        ]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The form's own "greater than or equal to 0" check would answer a negative number
        # before the model's validators, which say what the value means and what to enter.
        for field in self.fields.values():
            field.validators = [
                v
                for v in field.validators
                if not (isinstance(v, MinValueValidator) and v.limit_value == 0)
            ]
            if isinstance(field, forms.IntegerField):
                field.min_value = None
                field.widget.attrs["min"] = 1


class SingleRowAdmin(admin.ModelAdmin):
    """Settings of one row: the list goes straight to its form, which always exists."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        self.model.load()
        opts = self.model._meta
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[1])
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        self.model.load()  # links lead here before anything has created the row
        return super().change_view(request, object_id, form_url, extra_context)


@admin.register(PerformanceSettings)
class PerformanceSettingsAdmin(SingleRowAdmin):
    """The engine's live settings, with the deployment's figures beside them."""

    form = PerformanceSettingsForm
    change_form_template = "admin/mailer/performancesettings/change_form.html"
    fieldsets = [
        (_("Campaigns at once"), {"fields": ["max_running_campaigns"]}),
        (_("Rates"), {"fields": ["message_rate", "default_campaign_rate"]}),
        (_("Work"), {"fields": ["batch_size"]}),
        (
            _("Errors and retries"),
            {"fields": ["max_send_errors", "max_attempts", "retry_delay", "retry_unknown"]},
        ),
    ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        online = heartbeats.workers_online()
        senders = [w for w in online if "send" in w["queues"]]
        deployment = {
            "worker_slots": sum(w["concurrency"] for w in senders),
            "send_workers": len(senders),
            "workers": len(online),
            "db_pool_max_size": settings.DB_POOL_MAX_SIZE,
            "settings_every": SETTINGS_EVERY,
            "domain_throttles": DomainThrottle.objects.count(),
            "smtp_servers": SmtpServer.objects.filter(is_enabled=True).count(),
        }
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), "deployment": deployment}
        )

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        messages.info(
            request,
            f"Running workers use these values within {SETTINGS_EVERY:g} seconds; no restart "
            "is needed.",
        )


@admin.register(Delivery)
class DeliveryAdmin(ScopedToLists, admin.ModelAdmin):
    """The ledger is written by the engine only; here it can be searched and read (the
    messages of campaigns whose lists the user may all see)."""

    list_path = "campaign__lists"
    every_list = True

    list_display = [
        "email",
        "campaign",
        "status",
        "attempts",
        "sent_at",
        "content_version",
        "reply",
    ]
    list_filter = ["status", ("campaign", ScopedRelatedFilter)]
    search_fields = ["email"]
    list_select_related = ["campaign"]
    show_full_result_count = False
    paginator = EstimatedPaginator

    def get_search_results(self, request, queryset, search_term):
        """An address: the subscriber's address index, then the ledger's subscriber index
        (the ledger has no index on addresses; a search by part of one reads it all)."""
        term = search_term.strip()
        if "@" in term and " " not in term:
            address = lookup_form(term)
            return queryset.filter(subscriber__email=address, email=address), False
        return super().get_search_results(request, queryset, search_term)

    def changelist_view(self, request, extra_context=None):
        """A folded campaign's rows are not in this table any more: say so, and where they
        are, to whoever may see the campaign (mailer.folding)."""
        campaign = request.GET.get("campaign__id__exact", "")
        if campaign.isdigit():
            visible = scope(request.user, Campaign.objects.filter(pk=campaign), "lists", every=True)
            blocks = LedgerBlock.objects.filter(campaign__in=visible)
            if folded := blocks.aggregate(rows=Sum("size"))["rows"]:
                message = ngettext(
                    "This campaign's ledger is folded: its %(count)s recipient is no longer "
                    "listed here. Each subscriber's page shows the campaigns they got; the "
                    "database view mailer_ledger holds every row.",
                    "This campaign's ledger is folded: its %(count)s recipients are no longer "
                    "listed here. Each subscriber's page shows the campaigns they got; the "
                    "database view mailer_ledger holds every row.",
                    folded,
                )
                messages.info(request, message % {"count": folded})
        return super().changelist_view(request, extra_context)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Bounce)
class BounceAdmin(ScopedToLists, admin.ModelAdmin):
    """Bounces and complaints as providers reported them (written by the webhooks); those of
    subscribers on lists the user may see."""

    list_path = "subscriber__subscriptions__mailing_list"

    list_display = ["email", "kind", "campaign", "source", "description", "at"]
    list_filter = ["kind", "source", ("campaign", ScopedRelatedFilter)]
    search_fields = ["email"]
    list_select_related = ["campaign"]
    date_hierarchy = "at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(MailboxReport)
class MailboxReportAdmin(admin.ModelAdmin):
    """What the bounce mailbox read, and why a message was not applied. The messages name
    anyone's address, so a user limited to some lists does not see them."""

    list_display = ["read_at", "outcome", "format", "bounces", "subject", "sender", "reason"]
    list_filter = ["outcome", "format"]
    search_fields = ["subject", "sender"]
    readonly_fields = ["message"]
    exclude = ["raw"]
    actions = ["apply_by_hand"]

    def has_view_permission(self, request, obj=None) -> bool:
        return not restricted(request.user) and super().has_view_permission(request, obj)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("message as received"))
    def message(self, row: MailboxReport) -> str:
        return bytes(row.raw).decode("utf-8", "replace") or "(applied: not kept)"

    @admin.action(description=_("Apply the addresses they name as bounces"), permissions=["bounce"])
    def apply_by_hand(self, request, queryset) -> None:
        counted = sum(mailbox.apply_by_hand(row) for row in queryset)
        self.message_user(
            request, _("%(counted)s bounces and complaints recorded.") % {"counted": counted}
        )

    def has_bounce_permission(self, request) -> bool:
        return not restricted(request.user) and request.user.has_perm("mailer.add_bounce")


@admin.register(BounceSettings)
class BounceSettingsAdmin(SingleRowAdmin):
    """When bounces and complaints blocklist a subscriber."""


@admin.register(TxMessage)
class TxMessageAdmin(ScopedToLists, admin.ModelAdmin):
    """Transactional messages, from request to reply (written by mailer.tx); a user limited to
    some lists sees those to subscribers on them."""

    list_path = "subscriber__subscriptions__mailing_list"

    list_display = ["id", "to_email", "subject", "kind", "status", "attempts", "sent_at", "reply"]
    list_filter = ["status", "kind"]
    search_fields = ["to_email", "message_id"]
    date_hierarchy = "created_at"
    exclude = ["data"]
    show_full_result_count = False
    paginator = EstimatedPaginator

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
