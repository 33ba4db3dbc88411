"""Celery tasks of the subscribers app (queue `default`): thin shells over services."""

from __future__ import annotations

from celery import shared_task

from subscribers import services


@shared_task(name="subscribers.tasks.run_import", ignore_result=True)
def run_import(*, import_id: int) -> None:
    """Import an uploaded CSV file, recording progress on its row as it goes."""
    services.subscriber_import_run(import_id=import_id)
