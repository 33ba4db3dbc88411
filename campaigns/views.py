"""A campaign's message in a browser, as the recipient of the link got it."""

from __future__ import annotations

from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.html import escape
from django.utils.http import content_disposition_header
from django.views.decorators.clickjacking import xframe_options_sameorigin

from campaigns import tracking
from campaigns.models import Campaign, Media, TrackedLink
from campaigns.rendering import TemplateError
from campaigns.sanitising import sanitise
from mailer.compose import CampaignComposer
from subscribers import links
from subscribers.models import Subscriber


def render_for(campaign: Campaign, subscriber: Subscriber | None) -> tuple[str, str, str | None]:
    """Subject, text and HTML of the campaign as this subscriber (or a sample one) gets it."""
    composer = CampaignComposer(campaign, campaign.content())
    context = composer.context(
        subscriber_id=subscriber.pk if subscriber else None,
        email=subscriber.email if subscriber else "sample@example.com",
        name=subscriber.name if subscriber else "Sample Subscriber",
        attributes=subscriber.attributes if subscriber else {},
    )
    rendered = composer.content.render(context)
    return rendered.subject, rendered.text, rendered.html


VIEW_POLICY = (
    "sandbox allow-popups allow-popups-to-escape-sandbox; default-src 'none'; "
    "script-src 'none'; img-src * data:; style-src 'unsafe-inline'; form-action 'none'; "
    "frame-src 'none'; base-uri 'none'"
)


@xframe_options_sameorigin
def view_in_browser(request: HttpRequest, token: str) -> HttpResponse:
    try:
        data = links.read(token, links.Purpose.VIEW)
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
    # Anyone who may edit a campaign or a layout writes this HTML, and the page is served on
    # the admin's origin: it goes out sanitised, as the admin's preview shows it, and the
    # browser is told to run nothing in it (a sandbox without scripts, forms or frames).
    response = HttpResponse(sanitise(html))
    response["Content-Security-Policy"] = VIEW_POLICY
    response["X-Robots-Tag"] = "noindex"
    return response


# A transparent GIF of one pixel.
PIXEL = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\x00\x00\x00!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)


def open_pixel(request: HttpRequest, token: str) -> HttpResponse:
    """The open-tracking image: recorded (one Redis write) when the signature holds."""
    try:
        data = links.read(token, links.Purpose.TRACK)
    except links.BadLink:
        data = None
    if data is not None and data.campaign_id:
        tracking.record_open(campaign_id=data.campaign_id, subscriber_id=data.subscriber_id)
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, private"
    return response


def click(request: HttpRequest, token: str, link_id: int) -> HttpResponse:
    """The click redirect: only to a link of the campaign the signed token names."""
    try:
        data = links.read(token, links.Purpose.TRACK)
    except links.BadLink as error:
        raise Http404("This link does not work; open it again from the email.") from error
    url = _link_url(data.campaign_id, link_id)
    if url is None:
        raise Http404("This link does not work; open it again from the email.")
    tracking.record_click(
        campaign_id=data.campaign_id, subscriber_id=data.subscriber_id, link_id=link_id
    )
    response = HttpResponseRedirect(url)
    response["Cache-Control"] = "no-store, private"
    response["Referrer-Policy"] = "no-referrer"
    return response


# Link URLs never change once made; a process keeps the ones it served.
_links_cache: dict[tuple[int, int], str] = {}


def _link_url(campaign_id: int, link_id: int) -> str | None:
    url = _links_cache.get((campaign_id, link_id))
    if url is None:
        url = (
            TrackedLink.objects.filter(pk=link_id, campaign_id=campaign_id)
            .values_list("url", flat=True)
            .first()
        )
        if url is not None and len(_links_cache) < 100_000:
            _links_cache[(campaign_id, link_id)] = url
    return url


def library_file(request: HttpRequest, name: str) -> FileResponse:
    """A media library file, from the local `library` storage (an S3 bucket serves its own).
    Only files the library holds are served, with the type checked at upload, never run."""
    media = Media.objects.filter(Q(file=name) | Q(thumbnail=name)).first()
    if media is None:
        raise Http404("No such file in the media library.")
    thumbnail = media.thumbnail.name == name
    stored = media.thumbnail if thumbnail else media.file
    try:
        handle = stored.open("rb")
    except FileNotFoundError as error:
        raise Http404("The file is missing from storage.") from error
    response = FileResponse(handle, content_type="image/png" if thumbnail else media.content_type)
    if media.kind == Media.Kind.FILE and not thumbnail:
        response["Content-Disposition"] = content_disposition_header(True, media.name)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    # Stored names are random and never reused: the file at an address never changes.
    response["Cache-Control"] = "public, max-age=31536000, immutable"
    return response
