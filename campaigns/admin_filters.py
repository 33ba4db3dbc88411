"""Admin filters shared by the campaigns' and the sequences' pages."""

from __future__ import annotations

from django.contrib import admin
from django.utils.translation import gettext_lazy as _


class TagFilter(admin.SimpleListFilter):
    """Filter by one of the tags in use on the rows the user may see (tags are a JSON list)."""

    title = _("tag")
    parameter_name = "tag"

    def lookups(self, request, model_admin):
        tags: set[str] = set()
        for row in model_admin.get_queryset(request).values_list("tags", flat=True):
            tags.update(t for t in row or [] if isinstance(t, str))
        return [(t, t) for t in sorted(tags)]

    def queryset(self, request, queryset):
        return queryset.filter(tags__contains=[self.value()]) if self.value() else queryset
