"""Public pages for subscribers: subscribe, confirm, unsubscribe (with RFC 8058 one-click),
preferences, and the GDPR export and erasure. Links are signed for one purpose each
(subscribers.links); none of these pages needs a login. Nothing about a subscriber beyond
their address and lists is ever shown to whoever holds a link: their data, and a link to
their preferences, are mailed to their own address."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from settings import audit, queues
from subscribers import forms_limits, languages, links, proof_of_work
from subscribers.models import MailingList, Subscriber, Subscription
from subscribers.services import (
    SubscriptionError,
    subscriber_erase,
    subscriber_set_lists,
    subscriber_subscribe,
    subscriber_unsubscribe,
    subscription_confirm,
)


def _message(request: HttpRequest, title: str, text: str, status: int = 200) -> HttpResponse:
    return render(
        request, "subscribers/message.html", {"title": title, "text": text}, status=status
    )


def _bad_link(request: HttpRequest) -> HttpResponse:
    return _message(
        request,
        _("This link does not work"),
        _(
            "It may have been cut short when it was copied. Open it again from the email, "
            "or copy the whole address."
        ),
        status=404,
    )


def _test_link(request: HttpRequest) -> HttpResponse:
    return _message(
        request,
        _("This link comes from a test message"),
        _(
            "In the real campaign it leads each subscriber to their own page; a test changes "
            "nothing."
        ),
    )


def _gone(request: HttpRequest) -> HttpResponse:
    return _message(
        request,
        _("This address is no longer on file"),
        _("Its data was erased, so there is nothing to change."),
        status=404,
    )


def _old_link(request: HttpRequest, token: str) -> HttpResponse:
    return render(request, "subscribers/old_link.html", {"token": token}, status=403)


def _subscriber(
    request: HttpRequest, token: str, purpose: links.Purpose
) -> tuple[Subscriber | None, links.LinkData | None, HttpResponse | None]:
    try:
        data = links.read(token, purpose)
    except links.OldLink:
        return None, None, _old_link(request, token)
    except links.BadLink:
        return None, None, _bad_link(request)
    if not data.subscriber_id:
        return None, data, _test_link(request)
    subscriber = Subscriber.objects.filter(pk=data.subscriber_id).first()
    if subscriber is None:
        return None, data, _gone(request)
    return subscriber, data, None


def _too_many(request: HttpRequest, wait: int) -> HttpResponse:
    minutes = max(round(wait / 60), 1)
    response = _message(
        request,
        _("Please wait"),
        ngettext(
            "This form was sent too often; try again in about %(minutes)d minute.",
            "This form was sent too often; try again in about %(minutes)d minutes.",
            minutes,
        )
        % {"minutes": minutes},
        status=429,
    )
    response["Retry-After"] = str(wait)
    return response


@csrf_exempt  # the form is meant to be embedded in other sites; opt-in protects the list
@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest, list_id: int) -> HttpResponse:
    mailing_list = get_object_or_404(MailingList, pk=list_id, is_public=True)
    languages.speak(mailing_list.language)
    context = {"list": mailing_list, "email": "", "name": "", "error": ""}
    if request.method == "GET":
        return render(request, "subscribers/subscribe.html", context)
    if wait := forms_limits.wait_for_client(request.META.get("REMOTE_ADDR", "")):
        return _too_many(request, wait)
    if request.POST.get("website"):  # a field people never see; bots fill it in
        return _message(request, _("Thank you"), _("Please check your inbox."))
    email = request.POST.get("email", "")
    name = request.POST.get("name", "")
    try:
        proof_of_work.check(request.POST.get(proof_of_work.FIELD, ""))
    except proof_of_work.NotSolved as error:
        context.update(
            email=email,
            name=name,
            error=_(
                "The form was not sent: %(error)s. Make sure JavaScript is allowed on this "
                "page, then press Subscribe again."
            )
            % {"error": error},
        )
        return render(request, "subscribers/subscribe.html", context, status=400)
    if email.strip() and (wait := forms_limits.wait_for_address(email)):
        return _too_many(request, wait)
    try:
        subscriber, pending = subscriber_subscribe(email=email, name=name, lists=[mailing_list])
    except SubscriptionError as error:
        context.update(email=email, name=name, error=str(error))
        return render(request, "subscribers/subscribe.html", context, status=400)
    if pending:
        queues.enqueue_on_commit(
            queues.SEND_OPTIN_CONFIRMATION,
            subscriber_id=subscriber.pk,
            list_ids=[m.pk for m in pending],
        )
    # One answer whatever the address was (new, subscribed already, blocklisted): the page
    # must not tell strangers who is on a list.
    if mailing_list.opt_in == MailingList.OptIn.DOUBLE:
        return _message(
            request,
            _("Almost done"),
            _(
                "If %(email)s can join %(list)s, a message is on its way to it. Follow the "
                "link in it to confirm your subscription."
            )
            % {"email": subscriber.email, "list": mailing_list.name},
        )
    return _message(
        request, _("Thank you"), _("You are subscribed to %(list)s.") % {"list": mailing_list.name}
    )


def subscribe_challenge(request: HttpRequest) -> JsonResponse:
    """A proof-of-work challenge for the subscribe form, from any site that embeds it."""
    response = JsonResponse(proof_of_work.challenge())
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = "no-store"
    return response


@require_http_methods(["GET", "POST"])
def confirm(request: HttpRequest, token: str) -> HttpResponse:
    try:
        subscriber_id, list_ids = links.read_confirm(token)
    except links.BadLink:
        return _bad_link(request)
    languages.speak(languages.of_lists(MailingList.objects.filter(pk__in=list_ids).order_by("pk")))
    if request.method == "GET":
        # A GET only shows the button: mail providers' link scanners open every link.
        subscriber = get_object_or_404(Subscriber, pk=subscriber_id)
        lists = MailingList.objects.filter(
            pk__in=list_ids,
            subscriptions__subscriber=subscriber,
            subscriptions__status=Subscription.Status.UNCONFIRMED,
        ).order_by("name")
        if not lists:
            return _already_confirmed(request)
        names = ", ".join(m.name for m in lists)
        return render(
            request,
            "subscribers/confirm.html",
            {"subscriber": subscriber, "lists": lists, "names": names},
        )
    confirmed = subscription_confirm(subscriber_id=subscriber_id, list_ids=list_ids)
    if not confirmed:
        return _already_confirmed(request)
    names = ", ".join(m.name for m in confirmed)
    return _message(
        request, _("Subscription confirmed"), _("You are subscribed to %(list)s.") % {"list": names}
    )


def _already_confirmed(request: HttpRequest) -> HttpResponse:
    return _message(
        request, _("Already confirmed"), _("There was nothing left to confirm for this link.")
    )


@csrf_exempt  # RFC 8058: mail clients POST here without cookies; the signed link is the key
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    subscriber, data, problem = _subscriber(request, token, links.Purpose.UNSUBSCRIBE)
    if problem is not None:
        if request.method == "POST" and data is not None and not data.subscriber_id:
            return HttpResponse("test message: nothing to do\n", content_type="text/plain")
        return problem
    assert subscriber is not None and data is not None
    lists = _campaign_lists(data.campaign_id)
    languages.speak(languages.of_lists(lists) or languages.of_subscriber(subscriber))
    if request.method == "GET":
        # A GET only shows the button: link checkers and previews must not unsubscribe.
        return render(
            request,
            "subscribers/unsubscribe.html",
            {
                "subscriber": subscriber,
                "lists": lists,
                "names": ", ".join(m.name for m in lists),
                "token": token,
            },
        )
    subscriber_unsubscribe(subscriber=subscriber, lists=lists or None, campaign_id=data.campaign_id)
    if request.POST.get("List-Unsubscribe") == "One-Click":
        return HttpResponse("unsubscribed\n", content_type="text/plain")
    names = ", ".join(m.name for m in lists) if lists else _("all lists")
    return render(
        request,
        "subscribers/unsubscribed.html",
        {"names": names, "token": token, "subscriber": subscriber},
    )


def _campaign_lists(campaign_id: int) -> list[MailingList]:
    if not campaign_id:
        return []
    return list(MailingList.objects.filter(campaigns__pk=campaign_id).order_by("name"))


@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    subscriber, _link, problem = _subscriber(request, token, links.Purpose.PREFERENCES)
    if problem is not None:
        return problem
    assert subscriber is not None
    languages.speak(languages.of_subscriber(subscriber))
    saved = False
    if request.method == "POST":
        wanted = {int(v) for v in request.POST.getlist("lists") if v.isdigit()}
        subscriber_set_lists(subscriber=subscriber, wanted=wanted)
        saved = True
    subscriptions = {
        s.mailing_list_id: s.status for s in Subscription.objects.filter(subscriber=subscriber)
    }
    shown = MailingList.objects.filter(is_public=True) | MailingList.objects.filter(
        pk__in=[pk for pk, status in subscriptions.items() if status != "unsubscribed"]
    )
    choices = [
        {
            "list": mailing_list,
            "checked": subscriptions.get(mailing_list.pk) in ("confirmed", "unconfirmed"),
        }
        for mailing_list in shown.distinct().order_by("name")
    ]
    return render(
        request,
        "subscribers/preferences.html",
        {"subscriber": subscriber, "choices": choices, "token": token, "saved": saved},
    )


def _send_notice(request: HttpRequest, subscriber: Subscriber, kind: str) -> HttpResponse:
    languages.speak(languages.of_subscriber(subscriber))
    if wait := forms_limits.wait_for_notice(subscriber.pk):
        return _too_many(request, wait)
    queues.enqueue_on_commit(queues.SEND_SUBSCRIBER_NOTICE, subscriber_id=subscriber.pk, kind=kind)
    text = (
        _("A message with your data is on its way to %(email)s.")
        if kind == "export"
        else _("A message with a link to your preferences is on its way to %(email)s.")
    )
    return _message(request, _("Check your inbox"), text % {"email": subscriber.email})


@require_POST
def preferences_export(request: HttpRequest, token: str) -> HttpResponse:
    """Everything stored about the subscriber, mailed to their own address: whoever holds
    the link (it may have been forwarded) never sees it."""
    subscriber, _link, problem = _subscriber(request, token, links.Purpose.PREFERENCES)
    if problem is not None:
        return problem
    assert subscriber is not None
    audit.record(subscriber, "data export mailed to the subscriber at their request")
    return _send_notice(request, subscriber, "export")


@require_POST
def send_preferences_link(request: HttpRequest, token: str) -> HttpResponse:
    """A link to the preferences page, mailed to the subscriber's own address, asked for
    from the unsubscribe page (whose link does not open the preferences)."""
    subscriber, _link, problem = _subscriber(request, token, links.Purpose.UNSUBSCRIBE)
    if problem is not None:
        return problem
    assert subscriber is not None
    return _send_notice(request, subscriber, "preferences_link")


@require_POST
def preferences_erase(request: HttpRequest, token: str) -> HttpResponse:
    subscriber, _link, problem = _subscriber(request, token, links.Purpose.PREFERENCES)
    if problem is not None:
        return problem
    assert subscriber is not None
    languages.speak(languages.of_subscriber(subscriber))
    if request.POST.get("confirm") != "yes":
        return _message(request, _("Nothing was erased"), _("Tick the box to confirm, then erase."))
    subscriber_erase(subscriber=subscriber)
    return _message(
        request,
        _("Your data is erased"),
        _(
            "Your address, name, attributes and subscriptions are deleted; you will get no "
            "more messages from us."
        ),
    )
