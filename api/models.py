from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ApiToken(models.Model):
    """The secret an API user sends (listmonk's `Authorization: token user:secret`, or HTTP
    basic auth). Only its SHA-256 is kept: the secret is shown once, when it is made. The
    user is an ordinary Django user, so its groups (roles) and per-list permissions decide
    what the token may do, as for a person in the admin."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        verbose_name=_("user"),
        on_delete=models.CASCADE,
        related_name="api_token",
    )
    digest = models.CharField(_("digest"), max_length=64, unique=True, editable=False)
    # The first characters of the secret, to tell tokens apart in the admin.
    hint = models.CharField(_("hint"), max_length=8, editable=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)

    class Meta:
        verbose_name, verbose_name_plural = _("API user"), _("API users")

    def __str__(self) -> str:
        return self.user.get_username()

    @property
    def active(self) -> bool:
        return self.revoked_at is None and self.user.is_active
