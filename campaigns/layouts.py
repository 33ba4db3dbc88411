"""Templates: campaign layouts and transactional messages."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from campaigns.rendering import (
    PreparedContent,
    TemplateError,
    check_layout,
    check_template_source,
)


class Template(models.Model):
    """A campaign template is a reusable layout: the campaign's body goes where it says
    {{ content }}. A transactional template is a whole message (subject and HTML body) that
    applications send with `POST /api/tx`, filled with the request's `tx.data`."""

    class Kind(models.TextChoices):
        CAMPAIGN = "campaign", _("Campaign layout")
        TX = "tx", _("Transactional message")

    name = models.CharField(_("name"), max_length=200, unique=True)
    kind = models.CharField(
        _("kind"),
        max_length=20,
        choices=Kind.choices,
        default=Kind.CAMPAIGN,
        db_default=Kind.CAMPAIGN,
    )
    subject = models.CharField(
        _("subject"),
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text=_("Transactional templates only: the message's subject (variables work here)."),
    )
    html = models.TextField(
        _("HTML"),
        help_text=_(
            "HTML layout in the Django template language. Put {{ content }} where the "
            "campaign body goes; {{ subscriber.name }} and other variables work here too. A "
            "transactional template is the whole body and may use {{ tx.data.<key> }}."
        ),
        default="<html><body>{{ content }}</body></html>",
    )
    # The layout a campaign made through the API gets when it names none (listmonk's).
    is_default = models.BooleanField(_("is default"), default=False, db_default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name, verbose_name_plural = _("template"), _("templates")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_template"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        try:
            if self.kind == self.Kind.TX:
                self.content()
            else:
                check_template_source(self.html)
                check_layout(self.html)
        except TemplateError as error:
            field = "subject" if str(error).startswith("The subject") else "html"
            raise ValidationError({field: str(error)}) from error

    def content(self, format: str = "html") -> PreparedContent:
        """A transactional template's subject and body, compiled (raises TemplateError); the
        body is HTML, or Markdown or plain text as a request says (listmonk's content_type)."""
        return PreparedContent(
            subject=self.subject, body=self.html, layout=None, format=format, tx=True
        )
