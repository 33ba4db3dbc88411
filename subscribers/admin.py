import json
from typing import Any, cast

from django.contrib import admin, messages
from django.db.models import Count
from django.http import FileResponse, Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.templatetags.static import static
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from guardian.admin import GuardedModelAdmin

from settings import audit, queues
from subscribers import links
from subscribers.access import OnListFilter, ScopedRelatedFilter, ScopedToLists, restricted
from subscribers.addresses import lookup_form
from subscribers.counting import EstimatedPaginator, with_counts
from subscribers.exports import subscriber_export, subscribers_export_csv
from subscribers.models import MailingList, Subscriber, SubscriberImport, Subscription
from subscribers.services import subscriber_blocklist, subscriber_erase
from subscribers.signals import subscriber_history_requested

# The campaign messages a subscriber's page shows, newest first.
HISTORY_ROWS = 50


def _csv_download(rows, name: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


@admin.action(
    description=_("Export as CSV (all matching the filter with “select all”)"), permissions=["view"]
)
def export_csv(modeladmin, request, queryset) -> StreamingHttpResponse:
    # A bulk export has no one object: the trail files it under the user who made it.
    audit.record(
        request.user,
        "exported subscribers as CSV",
        subscribers=queryset.count(),
        filter=request.GET.urlencode(),
    )
    return _csv_download(subscribers_export_csv(subscribers=queryset), "subscribers")


@admin.action(description=_("Blocklist: never mail them again"), permissions=["change"])
def blocklist(modeladmin, request, queryset) -> None:
    count = subscriber_blocklist(subscribers=queryset)
    modeladmin.message_user(
        request, _("Blocklisted %(count)s subscriber(s).") % {"count": count}, messages.SUCCESS
    )


@admin.action(description=_("Export their data as JSON (GDPR access)"), permissions=["view"])
def export_data(modeladmin, request, queryset) -> HttpResponse:
    chosen = list(queryset[:1000])
    data = [subscriber_export(subscriber=s) for s in chosen]
    for subscriber in chosen:
        audit.record(subscriber, "exported their data (JSON)")
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = 'attachment; filename="subscribers.json"'
    return response


@admin.action(
    description=_("Erase them and their data (GDPR erasure, cannot be undone)"),
    permissions=["delete"],
)
def erase(modeladmin, request, queryset) -> None:
    count = 0
    for subscriber in queryset:
        subscriber_erase(subscriber=subscriber)
        count += 1
    modeladmin.message_user(
        request,
        _(
            "Erased %(count)s subscriber(s): their data is deleted and their address is removed "
            "from the sending ledger."
        )
        % {"count": count},
        messages.SUCCESS,
    )


class SubscriptionInline(ScopedToLists, admin.TabularInline):
    list_path = "mailing_list"
    model = Subscription
    extra = 0
    autocomplete_fields = ["mailing_list"]
    fields = ["mailing_list", "status", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Subscriber)
class SubscriberAdmin(ScopedToLists, admin.ModelAdmin):
    list_path = "subscriptions__mailing_list"
    list_display = ["email", "name", "status", "created_at"]
    list_filter = ["status", OnListFilter, "created_at"]
    search_fields = ["email", "name"]
    readonly_fields = [
        "created_at",
        "updated_at",
        "preferences_link",
        "bounce_counts",
        "campaign_history",
    ]
    inlines = [SubscriptionInline]
    show_full_result_count = False
    paginator = EstimatedPaginator
    actions = [export_csv, blocklist, export_data, erase]

    def get_ordering(self, request):
        if request.GET.get(OnListFilter.parameter_name) and not request.GET.get("o"):
            return ["-subscriptions__updated_at"]  # a list's members (OnListFilter)
        return super().get_ordering(request)

    def get_search_results(self, request, queryset, search_term):
        """An address is looked up exactly (the email index); other words search names and
        addresses by their parts."""
        term = search_term.strip()
        if "@" in term and " " not in term:
            return queryset.filter(email=lookup_form(term)), False
        return super().get_search_results(request, queryset, search_term)

    @admin.display(description=_("bounces"))
    def bounce_counts(self, obj: Subscriber) -> str:
        if obj.pk is None:
            return "-"
        counts = dict(
            obj.bounces.values_list("kind").annotate(n=Count("id")).values_list("kind", "n")
        )
        return (
            f"{counts.get('hard', 0)} hard, {counts.get('soft', 0)} soft, "
            f"{counts.get('complaint', 0)} complaints"
        )

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        # The preferences page can erase the subscriber: only those who may delete see it.
        if not self.has_delete_permission(request, obj):
            fields = [f for f in fields if f != "preferences_link"]
        if not request.user.has_perm("campaigns.view_campaign"):
            fields = [f for f in fields if f != "campaign_history"]
        return fields

    @admin.display(description=_("campaign history"))
    def campaign_history(self, obj: Subscriber) -> str:
        """The last 50 campaign messages to the subscriber (mailer answers the signal)."""
        if obj.pk is None:
            return "-"
        rows: list[dict[str, Any]] = []
        for _receiver, answer in subscriber_history_requested.send(
            sender=Subscriber, subscriber_id=obj.pk, limit=HISTORY_ROWS
        ):
            rows += cast("list[dict[str, Any]]", answer or [])
        if not rows:
            return gettext("No campaign has been sent to this subscriber.")
        lines = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td></tr>",
            (
                (
                    reverse("admin:campaigns_campaign_report", args=[row["campaign_id"]]),
                    row["campaign"],
                    row["status"],
                    date_format(row["sent_at"], "SHORT_DATETIME_FORMAT") if row["sent_at"] else "",
                    gettext("yes") if row["opened"] else "",
                    gettext("yes") if row["clicked"] else "",
                    row["reply"],
                )
                for row in rows
            ),
        )
        head = format_html(
            "<tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
            gettext("campaign"),
            gettext("status"),
            gettext("sent at"),
            gettext("opened"),
            gettext("clicked"),
            gettext("reply"),
        )
        return format_html('<table id="campaign-history">{}{}</table>', head, lines)

    @admin.display(description=_("preferences page"))
    def preferences_link(self, obj: Subscriber) -> str:
        if obj.pk is None:
            return "-"
        url = links.preferences_url(obj.pk)
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)


@admin.register(MailingList)
class MailingListAdmin(ScopedToLists, GuardedModelAdmin):  # type: ignore[misc]
    """Lists; an Admin gives users or groups a list on its *Object permissions* page."""

    list_display = ["name", "opt_in", "is_public", "confirmed", "unconfirmed", "unsubscribed"]
    list_filter = ["opt_in", "is_public"]
    search_fields = ["name"]
    readonly_fields = ["subscribe_form"]
    actions = ["export_members"]

    @admin.action(description=_("Export the list's subscribers as CSV"), permissions=["view"])
    def export_members(self, request, queryset) -> StreamingHttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, _("Choose one list to export."), messages.ERROR)
            return None
        mailing_list = queryset.get()
        audit.record(mailing_list, "exported its subscribers as CSV")
        return _csv_download(
            subscribers_export_csv(subscribers=Subscriber.objects.all(), mailing_list=mailing_list),
            f"list-{mailing_list.pk}",
        )

    @admin.display(description=_("subscribe form"))
    def subscribe_form(self, obj: MailingList) -> str:
        if obj.pk is None or not obj.is_public:
            return "Make the list public and save it to get its subscribe form."
        url = links.site(f"/subscribe/{obj.pk}/")
        # The form needs the proof-of-work script, from this site, to be accepted.
        snippet = (
            f'<form method="post" action="{url}" '
            f'data-pow-url="{links.site("/subscribe/challenge/")}">\n'
            '  <input type="email" name="email" placeholder="Your email" required>\n'
            '  <input type="text" name="name" placeholder="Your name">\n'
            '  <input type="text" name="website" style="display:none" tabindex="-1" '
            'autocomplete="off">\n'
            '  <input type="hidden" name="altcha" value="">\n'
            '  <button type="submit">Subscribe</button>\n</form>\n'
            f'<script src="{links.site(static("subscribers/proof-of-work.js"))}" defer></script>'
        )
        return format_html(
            '<p>Page: <a href="{}" target="_blank" rel="noopener">{}</a></p>'
            "<p>To embed it in another site, paste this HTML:</p>"
            '<textarea readonly rows="7" cols="80">{}</textarea>',
            url,
            url,
            snippet,
        )

    def get_queryset(self, request):
        return with_counts(super().get_queryset(request))  # kept by triggers, never counted

    @admin.display(ordering="n_confirmed")
    def confirmed(self, obj) -> int:
        return obj.n_confirmed

    @admin.display(ordering="n_unconfirmed")
    def unconfirmed(self, obj) -> int:
        return obj.n_unconfirmed

    @admin.display(ordering="n_unsubscribed")
    def unsubscribed(self, obj) -> int:
        return obj.n_unsubscribed


@admin.register(Subscription)
class SubscriptionAdmin(ScopedToLists, admin.ModelAdmin):
    list_path = "mailing_list"
    list_display = ["subscriber", "mailing_list", "status", "created_at"]
    list_filter = ["status", ("mailing_list", ScopedRelatedFilter)]
    search_fields = ["subscriber__email"]
    autocomplete_fields = ["subscriber", "mailing_list"]
    list_select_related = ["subscriber", "mailing_list"]
    show_full_result_count = False
    paginator = EstimatedPaginator


@admin.register(SubscriberImport)
class SubscriberImportAdmin(ScopedToLists, admin.ModelAdmin):
    """Upload a CSV; a worker imports it and this page shows its progress and result."""

    list_path = "mailing_list"

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        # Updating or blocklisting by file reaches subscribers of every list: only those who
        # see every list may.
        if db_field.name == "mode" and restricted(request.user):
            subscribe = SubscriberImport.Mode.SUBSCRIBE
            kwargs["choices"] = [(subscribe.value, subscribe.label)]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    list_display = [
        "__str__",
        "mailing_list",
        "status",
        "progress_bar",
        "imported",
        "skipped",
        "report",
        "created_at",
    ]
    list_filter = ["status", "mode"]
    fields = ["file", "mode", "mailing_list"]
    change_list_template = "admin/subscribers/subscriberimport/change_list.html"

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.fields
        return [
            *self.fields,
            "status",
            "progress_bar",
            "rows",
            "imported",
            "skipped",
            "message",
            "report",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj) if obj is not None else []

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_view_permission(self, request, obj=None) -> bool:
        return super().has_view_permission(request, obj) or super().has_change_permission(
            request, obj
        )

    def save_model(self, request, obj, form, change) -> None:
        obj.created_by = request.user
        super().save_model(request, obj, form, change)
        queues.enqueue_on_commit(queues.RUN_IMPORT, import_id=obj.pk)
        messages.info(
            request,
            "The file is uploaded; a worker imports it now. This list shows its progress.",
        )

    @admin.display(description=_("progress"))
    def progress_bar(self, obj: SubscriberImport) -> str:
        percent = round(obj.progress * 100)
        return format_html(
            '<progress value="{}" max="100"></progress> {}% · {} rows', percent, percent, obj.rows
        )

    @admin.display(description=_("skipped lines"))
    def report(self, obj: SubscriberImport) -> str:
        if not obj.error_report:
            return obj.message if obj.status == SubscriberImport.Status.FAILED else "-"
        url = reverse("admin:subscribers_subscriberimport_report", args=[obj.pk])
        return format_html('<a href="{}">download the report</a>', url)

    def get_urls(self):
        report = self.admin_site.admin_view(self.report_view)
        return [
            path("<int:import_id>/report/", report, name="subscribers_subscriberimport_report"),
            *super().get_urls(),
        ]

    def report_view(self, request, import_id: int) -> FileResponse:
        """The skipped lines (they hold addresses: staff only, never a public media URL)."""
        job = get_object_or_404(SubscriberImport, pk=import_id)
        if not self.has_view_permission(request, job) or not job.error_report:
            raise Http404("This import has no report.")
        return FileResponse(
            job.error_report.open("rb"),
            as_attachment=True,
            filename=f"import-{job.pk}-skipped-lines.csv",
            content_type="text/csv",
        )

    def changelist_view(self, request, extra_context=None):
        running = SubscriberImport.objects.filter(
            status__in=[SubscriberImport.Status.QUEUED, SubscriberImport.Status.RUNNING]
        ).exists()
        return super().changelist_view(request, {**(extra_context or {}), "refresh": running})
