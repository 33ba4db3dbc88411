import json

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpResponse
from django.utils.html import format_html

from subscribers import links
from subscribers.models import MailingList, Subscriber, Subscription
from subscribers.services import subscriber_blocklist, subscriber_erase, subscriber_export


@admin.action(description="Blocklist: never mail them again")
def blocklist(modeladmin, request, queryset) -> None:
    count = subscriber_blocklist(subscribers=queryset)
    modeladmin.message_user(request, f"Blocklisted {count} subscriber(s).", messages.SUCCESS)


@admin.action(description="Export their data as JSON (GDPR access)")
def export_data(modeladmin, request, queryset) -> HttpResponse:
    data = [subscriber_export(subscriber=s) for s in queryset[:1000]]
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = 'attachment; filename="subscribers.json"'
    return response


@admin.action(description="Erase them and their data (GDPR erasure, cannot be undone)")
def erase(modeladmin, request, queryset) -> None:
    count = 0
    for subscriber in queryset:
        subscriber_erase(subscriber=subscriber)
        count += 1
    modeladmin.message_user(
        request,
        f"Erased {count} subscriber(s): their data is deleted and their address is removed "
        "from the sending ledger.",
        messages.SUCCESS,
    )


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    extra = 0
    autocomplete_fields = ["mailing_list"]
    fields = ["mailing_list", "status", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Subscriber)
class SubscriberAdmin(admin.ModelAdmin):
    list_display = ["email", "name", "status", "created_at"]
    list_filter = ["status", "mailing_lists", "created_at"]
    search_fields = ["email", "name"]
    readonly_fields = ["created_at", "updated_at", "preferences_link"]
    inlines = [SubscriptionInline]
    show_full_result_count = False
    actions = [blocklist, export_data, erase]

    @admin.display(description="preferences page")
    def preferences_link(self, obj: Subscriber) -> str:
        if obj.pk is None:
            return "-"
        url = links.urls(links.token(obj.pk, None))["preferences_url"]
        return format_html('<a href="{}" target="_blank" rel="noopener">{}</a>', url, url)


@admin.register(MailingList)
class MailingListAdmin(admin.ModelAdmin):
    list_display = ["name", "opt_in", "is_public", "confirmed", "unconfirmed", "unsubscribed"]
    list_filter = ["opt_in", "is_public"]
    search_fields = ["name"]
    readonly_fields = ["subscribe_form"]

    @admin.display(description="subscribe form")
    def subscribe_form(self, obj: MailingList) -> str:
        if obj.pk is None or not obj.is_public:
            return "Make the list public and save it to get its subscribe form."
        url = links.site(f"/subscribe/{obj.pk}/")
        snippet = (
            f'<form method="post" action="{url}">\n'
            '  <input type="email" name="email" placeholder="Your email" required>\n'
            '  <input type="text" name="name" placeholder="Your name">\n'
            '  <input type="text" name="website" style="display:none" tabindex="-1" '
            'autocomplete="off">\n'
            '  <button type="submit">Subscribe</button>\n</form>'
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
        status = Subscription.Status
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_confirmed=Count(
                    "subscriptions", filter=Q(subscriptions__status=status.CONFIRMED)
                ),
                n_unconfirmed=Count(
                    "subscriptions", filter=Q(subscriptions__status=status.UNCONFIRMED)
                ),
                n_unsubscribed=Count(
                    "subscriptions", filter=Q(subscriptions__status=status.UNSUBSCRIBED)
                ),
            )
        )

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
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ["subscriber", "mailing_list", "status", "created_at"]
    list_filter = ["status", "mailing_list"]
    search_fields = ["subscriber__email"]
    autocomplete_fields = ["subscriber", "mailing_list"]
    list_select_related = ["subscriber", "mailing_list"]
    show_full_result_count = False
