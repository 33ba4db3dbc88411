from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from api.models import ApiToken
from api.tokens import api_user_create, issue_token, revoke
from subscribers import access
from subscribers.models import MailingList


class NewApiUserForm(forms.ModelForm):
    """A new API user: its name, role and lists, never more than its maker has (a role they
    are in, lists they can see; superusers may give any)."""

    name = forms.SlugField(max_length=150, help_text=_("The user name the token is sent with."))
    role = forms.ModelChoiceField(queryset=Group.objects.none(), to_field_name="name")
    lists = forms.ModelMultipleChoiceField(
        queryset=MailingList.objects.none(),
        required=False,
        help_text=_("The lists it may use. None: only what its role sees (Admins see every list)."),
    )
    maker: Any = None  # the staff user making it, set by the admin

    class Meta:
        model = ApiToken
        fields: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        maker = self.maker
        roles = Group.objects.all() if maker.is_superuser else maker.groups.all()
        self.fields["role"].queryset = roles.order_by("name")  # type: ignore[attr-defined]
        self.fields["lists"].queryset = access.lists_for(maker)  # type: ignore[attr-defined]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if get_user_model().objects.filter(username=name).exists():
            raise forms.ValidationError(f"A user named {name!r} exists already.")
        return name


@admin.action(description=_("Revoke: the token stops working at once"), permissions=["change"])
def revoke_tokens(modeladmin, request, queryset) -> None:
    for token in queryset:
        revoke(token=token)
    modeladmin.message_user(
        request, _("Revoked %(value)s token(s).") % {"value": queryset.count()}, messages.SUCCESS
    )


@admin.action(description=_("New token (the old one stops working)"), permissions=["change"])
def rotate_tokens(modeladmin, request, queryset) -> None:
    for token in queryset:
        secret = issue_token(user=token.user)
        modeladmin.message_user(
            request,
            _("The new token of %(value)s, shown this once: %(secret)s")
            % {"value": token.user.get_username(), "secret": secret},
            messages.WARNING,
        )


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ["__str__", "roles", "hint", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["user", "hint", "created_at", "last_used_at", "revoked_at"]
    actions = [revoke_tokens, rotate_tokens]

    @admin.display(description=_("role"))
    def roles(self, obj: ApiToken) -> str:
        return ", ".join(obj.user.groups.values_list("name", flat=True))

    def get_form(self, request: HttpRequest, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = type("NewApiUserFormFor", (NewApiUserForm,), {"maker": request.user})
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj=None):
        return ["name", "role", "lists"] if obj is None else self.readonly_fields

    def save_model(self, request: HttpRequest, obj: ApiToken, form, change: bool) -> None:
        if change:
            return
        data = form.cleaned_data
        user, secret = api_user_create(
            name=data["name"], role=data["role"].name, list_ids=[m.pk for m in data["lists"]]
        )
        token = user.api_token
        obj.pk, obj.user, obj.hint, obj.created_at = token.pk, user, token.hint, token.created_at
        obj._state.adding = False
        self.message_user(
            request,
            _(
                "API user %(user)s made. Its token, shown this once: %(secret)s — send it as "
                "`Authorization: token %(user)s:TOKEN`."
            )
            % {"user": user.get_username(), "secret": secret},
            messages.WARNING,
        )
