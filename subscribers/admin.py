from django.contrib import admin
from django.db.models import Count, Q

from subscribers.models import MailingList, Subscriber, Subscription


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
    readonly_fields = ["created_at", "updated_at"]
    inlines = [SubscriptionInline]
    show_full_result_count = False


@admin.register(MailingList)
class MailingListAdmin(admin.ModelAdmin):
    list_display = ["name", "opt_in", "is_public", "confirmed", "unconfirmed", "unsubscribed"]
    list_filter = ["opt_in", "is_public"]
    search_fields = ["name"]

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
