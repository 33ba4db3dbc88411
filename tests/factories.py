from __future__ import annotations

import factory

from campaigns.models import Campaign, Template
from mailer.models import SmtpServer
from subscribers.models import MailingList, Subscriber, Subscription


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    email = factory.Sequence(lambda n: f"person{n}@example.com")
    name = factory.Sequence(lambda n: f"Person {n}")
    attributes = factory.LazyFunction(lambda: {"city": "Lyon"})


class MailingListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MailingList

    name = factory.Sequence(lambda n: f"List {n}")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    subscriber = factory.SubFactory(SubscriberFactory)
    mailing_list = factory.SubFactory(MailingListFactory)
    status = Subscription.Status.CONFIRMED


class TemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Template

    name = factory.Sequence(lambda n: f"Layout {n}")
    html = "<html><body>{{ content }}<p>footer</p></body></html>"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Campaign {n}")
    subject = "Hello {{ subscriber.name }}"
    body = "<p>Hi {{ subscriber.name }} from {{ subscriber.attributes.city }}</p>"
    from_email = "News <news@example.com>"

    @factory.post_generation
    def lists(self, create, extracted, **kwargs):
        if create and extracted:
            self.lists.set(extracted)


class SmtpServerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SmtpServer

    name = factory.Sequence(lambda n: f"sink {n}")
    host = "127.0.0.1"
    port = 25
    security = SmtpServer.Security.NONE
    timeout = 10


def audience(mailing_list: MailingList, count: int, **subscriber_fields) -> list[Subscriber]:
    subscribers = SubscriberFactory.create_batch(count, **subscriber_fields)
    Subscription.objects.bulk_create(
        Subscription(subscriber=s, mailing_list=mailing_list, status=Subscription.Status.CONFIRMED)
        for s in subscribers
    )
    return subscribers


def running_campaign(count: int, **kwargs) -> Campaign:
    """A campaign of `count` new subscribers, started as the dispatcher starts it."""
    from mailer import dispatcher
    from mailer.models import PerformanceSettings

    mailing_list = MailingListFactory()
    audience(mailing_list, count)
    campaign = CampaignFactory(status=Campaign.Status.SCHEDULED, lists=[mailing_list], **kwargs)
    dispatcher.campaign_begin(campaign.pk)
    dispatcher.share_limits(PerformanceSettings.load())
    campaign.refresh_from_db()
    return campaign


def performance_form(**changes: str) -> dict[str, str]:
    """What the Settings → Performance form posts, with these fields changed."""
    return {
        "max_running_campaigns": "3",
        "message_rate": "",
        "default_campaign_rate": "",
        "batch_size": "50",
        "max_send_errors": "100",
        "max_attempts": "5",
        "retry_delay": "60",
        **changes,
    }


def solved_pow() -> dict[str, str]:
    """The proof-of-work field of a subscribe form, as a browser fills it in."""
    from subscribers import proof_of_work

    return {proof_of_work.FIELD: proof_of_work.solve(proof_of_work.challenge())}
