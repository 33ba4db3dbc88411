"""Celery tasks of the subscribers app (queue `default`): thin shells over services."""

from __future__ import annotations

from celery import shared_task

from settings import queues
from subscribers import imports


@shared_task(name=queues.RUN_IMPORT, ignore_result=True)
def run_import(*, import_id: int) -> None:
    """Import an uploaded CSV file, recording progress on its row as it goes."""
    imports.subscriber_import_run(import_id=import_id)
