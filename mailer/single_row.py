"""Settings kept as one row of a table, edited in the admin."""

from __future__ import annotations

from typing import Self

from django.db import models


class SingleRow(models.Model):
    """A model with exactly one row (pk 1): settings edited in the admin."""

    class Meta:
        abstract = True

    def save(self, *args, **kwargs) -> None:
        self.pk = 1
        super().save(*args, **kwargs)

    @classmethod
    def load(cls) -> Self:
        obj, _ = cls._default_manager.get_or_create(pk=1)
        return obj
