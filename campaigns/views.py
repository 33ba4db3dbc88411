"""A campaign's message in a browser, as the recipient of the link got it."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse
from django.utils.html import escape
from django.views.decorators.clickjacking import xframe_options_sameorigin

from campaigns.models import Campaign
from campaigns.rendering import TemplateError
from subscribers import links
from subscribers.models import Subscriber


def render_for(campaign: Campaign, subscriber: Subscriber | None) -> tuple[str, str, str | None]:
    """Subject, text and HTML of the campaign as this subscriber (or a sample one) gets it."""
    token = links.token(subscriber.pk if subscriber else None, campaign.pk)
    context = {
        "subscriber": {
            "email": subscriber.email if subscriber else "sample@example.com",
            "name": subscriber.name if subscriber else "Sample Subscriber",
            "attributes": subscriber.attributes if subscriber else {},
        },
        "campaign": {"id": campaign.pk, "name": campaign.name},
        **links.urls(token),
    }
    rendered = campaign.content().render(context)
    return rendered.subject, rendered.text, rendered.html


@xframe_options_sameorigin
def view_in_browser(request: HttpRequest, token: str) -> HttpResponse:
    try:
        data = links.read(token)
    except links.BadLink as error:
        raise Http404("This link does not work; open it again from the email.") from error
    campaign = Campaign.objects.select_related("template").filter(pk=data.campaign_id).first()
    if campaign is None:
        raise Http404("This campaign no longer exists.")
    subscriber = Subscriber.objects.filter(pk=data.subscriber_id).first()
    try:
        subject, text, html = render_for(campaign, subscriber)
    except TemplateError as error:
        raise Http404("This campaign cannot be shown.") from error
    if html is None:
        html = (
            f"<!doctype html><title>{escape(subject)}</title>"
            f"<pre style='white-space:pre-wrap;font:15px/1.5 sans-serif'>{escape(text)}</pre>"
        )
    response = HttpResponse(html)
    response["X-Robots-Tag"] = "noindex"
    return response
