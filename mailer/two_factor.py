"""Two-factor login for the admin (django-otp, TOTP): any staff user may turn it on under
*Two-factor login*; with OTP_REQUIRED_FOR_SUPERUSERS, superusers must. Once a user has a
confirmed authenticator, the login form asks for its code as well as the password.

The QR code is drawn here (segno, as SVG): the secret never leaves the server for a
third-party image service.
"""

from __future__ import annotations

from collections.abc import Callable

import segno
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy as _
from django_otp import devices_for_user, user_has_device
from django_otp import login as otp_login
from django_otp.forms import OTPAuthenticationFormMixin
from django_otp.plugins.otp_totp.models import TOTPDevice


class LoginForm(OTPAuthenticationFormMixin, AdminAuthenticationForm):
    """The admin's login form; the code is required only of users with an authenticator."""

    otp_token = forms.CharField(
        required=False,
        label=_("Authenticator code"),
        help_text=_("Only if you turned two-factor login on: the six digits your app shows."),
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def _chosen_device(self, user):
        # One authenticator per user here: the form has no device to choose from.
        return next(devices_for_user(user, confirmed=True), None)

    def clean(self):
        cleaned = super().clean()
        user = self.get_user()
        if user is not None and user_has_device(user):
            self.clean_otp(user)
        return cleaned


class EnrolForm(forms.Form):
    token = forms.CharField(
        label=_("Code from the app"),
        max_length=8,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )


def enrol(request: HttpRequest) -> HttpResponse:
    """Turn two-factor login on: scan the code, type the six digits the app shows."""
    user = request.user
    confirmed = TOTPDevice.objects.filter(user=user, confirmed=True).first()
    if confirmed is not None:
        return TemplateResponse(
            request,
            "admin/two_factor.html",
            {**admin.site.each_context(request), "title": "Two-factor login", "on": True},
        )
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="authenticator app", confirmed=False)
    form = EnrolForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            otp_login(request, device)
            messages.success(
                request, "Two-factor login is on: from now on you log in with a code too."
            )
            return redirect("admin:index")
        form.add_error("token", "That code does not match; check the app's clock and try again.")
    qr = segno.make(device.config_url, error="m").svg_inline(scale=5, omitsize=False)
    context = {
        **admin.site.each_context(request),
        "title": "Two-factor login",
        "on": False,
        "form": form,
        "qr": mark_safe(qr),  # noqa: S308 (drawn here from the device's own URL)
        "secret": device.config_url.split("secret=")[1].split("&")[0],
        "required": _required(request),
    }
    return TemplateResponse(request, "admin/two_factor.html", context)


def _required(request: HttpRequest) -> bool:
    user = request.user
    return bool(
        settings.OTP_REQUIRED_FOR_SUPERUSERS and user.is_authenticated and user.is_superuser
    )


class RequireTwoFactor:
    """With OTP_REQUIRED_FOR_SUPERUSERS, a superuser's admin session must have passed a
    code: one without an authenticator is sent to set one up, one who logged in without a
    code is logged out and asked for it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if _required(request) and request.path.startswith("/admin/"):
            open_anyway = {reverse("two-factor"), reverse("admin:logout")}
            verified = getattr(request.user, "is_verified", lambda: False)()
            if not verified and request.path not in open_anyway:
                if user_has_device(request.user):
                    logout(request)
                    return redirect(f"{reverse('admin:login')}?next={request.path}")
                messages.warning(
                    request, "Superusers must use two-factor login here: set it up first."
                )
                return redirect("two-factor")
        return self.get_response(request)
