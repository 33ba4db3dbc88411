"""The public archive: campaigns marked *publish in the archive* appear, once sent, on a public
page (all lists, and one per list) and in RSS and Atom feeds (Django's syndication framework).

Each is rendered for a placeholder subscriber (the campaign's `archive_meta`, never a real
subscriber's data), without tracking, and with the links that act on a subscriber (unsubscribe,
preferences, view in browser) taken out: a reader of the archive is nobody's subscriber.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from django.contrib.syndication.views import Feed
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import translation
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import escape
from django.utils.translation import gettext
from django.views.decorators.clickjacking import xframe_options_sameorigin

from campaigns.models import Campaign
from campaigns.rendering import RenderedContent, TemplateError
from campaigns.sanitising import sanitise
from subscribers.models import MailingList

# What the links that act on a subscriber become while rendering; then they are taken out.
REMOVED = "https://archive.invalid/removed"
_REMOVED_LINK = re.compile(
    r"<a\b[^>]*\bhref\s*=\s*([\"'])" + re.escape(REMOVED) + r"\1[^>]*>.*?</a\s*>",
    re.IGNORECASE | re.DOTALL,
)
PLACEHOLDER_NAME = "Subscriber"
PER_PAGE = 20
FEED_ITEMS = 30
# As the view-in-browser page: the campaign's HTML, sanitised, and nothing run in it.
PAGE_POLICY = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "script-src 'none'; img-src * data:; style-src 'unsafe-inline'; form-action 'none'; "
    "frame-src 'none'; base-uri 'none'"
)


def published(mailing_list: MailingList | None = None) -> QuerySet[Campaign]:
    """Campaigns in the archive: marked so, of kind campaign, and started."""
    rows = Campaign.objects.filter(
        archive=True,
        kind=Campaign.Kind.CAMPAIGN,
        started_at__isnull=False,
        status__in=[Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.FINISHED],
    ).exclude(archive_slug__isnull=True)
    if mailing_list is not None:
        rows = rows.filter(lists=mailing_list)
    return rows.order_by("-started_at", "-pk")


def rendered(campaign: Campaign) -> RenderedContent:
    """The campaign as the archive shows it (raises TemplateError)."""
    meta = campaign.archive_meta if isinstance(campaign.archive_meta, dict) else {}
    attributes = meta.get("attributes")
    context: dict[str, Any] = {
        "subscriber": {
            "email": "",
            "name": str(meta.get("name") or PLACEHOLDER_NAME),
            "uuid": str(uuid.UUID(int=0)),
            "attributes": attributes if isinstance(attributes, dict) else {},
        },
        "campaign": {"id": campaign.pk, "name": campaign.name},
        "unsubscribe_url": REMOVED,
        "preferences_url": REMOVED,
        "view_url": REMOVED,
    }
    content = campaign.content(tracking=False).render(context)
    text = "\n".join(line for line in content.text.splitlines() if REMOVED not in line)
    html = None if content.html is None else _REMOVED_LINK.sub("", content.html)
    return RenderedContent(subject=content.subject, text=text, html=html)


def as_html(campaign: Campaign) -> str:
    content = rendered(campaign)
    if content.html is not None:
        return sanitise(content.html.replace(REMOVED, "#"))
    return (
        f"<!doctype html><title>{escape(content.subject)}</title>"
        f"<pre style='white-space:pre-wrap;font:15px/1.5 sans-serif'>{escape(content.text)}</pre>"
    )


def _list_or_404(list_uuid: uuid.UUID | None) -> MailingList | None:
    if list_uuid is None:
        return None
    return get_object_or_404(MailingList, uuid=list_uuid)


def index(request: HttpRequest, list_uuid: uuid.UUID | None = None) -> HttpResponse:
    """The archive of all lists, or of one."""
    mailing_list = _list_or_404(list_uuid)
    if mailing_list is not None:
        translation.activate(mailing_list.language)
    page = Paginator(published(mailing_list), PER_PAGE).get_page(request.GET.get("page"))
    entries = []
    for campaign in page.object_list:
        try:
            subject = rendered(campaign).subject
        except TemplateError:
            subject = campaign.name
        entries.append({"campaign": campaign, "subject": subject})
    feed = (
        reverse("archive-list-feed", args=[mailing_list.uuid])
        if mailing_list
        else reverse("archive-feed")
    )
    context = {"mailing_list": mailing_list, "page": page, "entries": entries, "feed": feed}
    return render(request, "campaigns/archive/index.html", context)


@xframe_options_sameorigin
def message(request: HttpRequest, slug: str) -> HttpResponse:
    campaign = published().filter(archive_slug=slug).first()
    if campaign is None:
        raise Http404(gettext("No campaign of that name is in the archive."))
    try:
        page = as_html(campaign)
    except TemplateError as error:
        raise Http404(gettext("This campaign cannot be shown.")) from error
    response = HttpResponse(page)
    response["Content-Security-Policy"] = PAGE_POLICY
    return response


class ArchiveFeed(Feed):
    """RSS 2.0 of the archive (all lists, or the list named in the address)."""

    def get_object(self, request: HttpRequest, list_uuid: uuid.UUID | None = None) -> Any:
        mailing_list = _list_or_404(list_uuid)
        if mailing_list is not None:
            translation.activate(mailing_list.language)
        return mailing_list

    def title(self, obj: MailingList | None) -> str:
        if obj is None:
            return gettext("Campaign archive")
        return gettext("%(name)s: archive") % {"name": obj.name}

    def link(self, obj: MailingList | None) -> str:
        return reverse("archive-list", args=[obj.uuid]) if obj else reverse("archive")

    def description(self, obj: MailingList | None) -> str:
        return (obj.description if obj else "") or gettext("Campaigns as they were sent.")

    def items(self, obj: MailingList | None) -> list[Campaign]:
        return list(published(obj)[:FEED_ITEMS])

    def item_title(self, item: Campaign) -> str:
        try:
            return rendered(item).subject
        except TemplateError:
            return item.name

    def item_description(self, item: Campaign) -> str:
        try:
            return as_html(item)
        except TemplateError:
            return ""

    def item_link(self, item: Campaign) -> str:
        return reverse("archive-message", args=[item.archive_slug])

    def item_guid(self, item: Campaign) -> str:
        return f"urn:uuid:{item.uuid}"

    item_guid_is_permalink = False

    def item_pubdate(self, item: Campaign) -> Any:
        return item.started_at

    def item_updateddate(self, item: Campaign) -> Any:
        return item.finished_at or item.started_at


class ArchiveAtomFeed(ArchiveFeed):
    feed_type = Atom1Feed

    def subtitle(self, obj: MailingList | None) -> str:
        return self.description(obj)
