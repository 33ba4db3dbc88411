"""/api/import/subscribers: upload a CSV with its mode, follow its progress and log, stop it
(listmonk's shapes). The file is checked on upload as in the admin (CSV text, at most
IMPORT_MAX_MB) and imported by a worker on the `default` queue."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from ninja import File, Form, Router
from ninja.errors import HttpError
from ninja.files import UploadedFile

from api.envelope import ApiRequest, invalid, require, rfc3339
from settings import queues
from subscribers import access
from subscribers.imports import subscriber_import_stop
from subscribers.models import SubscriberImport

router = Router(tags=["Import"])

# listmonk's names for where an import stands.
STATUS = {
    SubscriberImport.Status.QUEUED: "importing",
    SubscriberImport.Status.RUNNING: "importing",
    SubscriberImport.Status.DONE: "finished",
    SubscriberImport.Status.FAILED: "failed",
    SubscriberImport.Status.STOPPED: "stopped",
}
MODES = {"subscribe": SubscriberImport.Mode.SUBSCRIBE, "blocklist": SubscriberImport.Mode.BLOCKLIST}
LOG_LINES = 200


def as_json(job: SubscriberImport | None) -> dict[str, Any]:
    if job is None:
        return {"name": "", "total": 0, "imported": 0, "status": "none"}
    return {
        "id": job.pk,
        "name": (job.file.name or "").rsplit("/", 1)[-1],
        "mode": job.mode,
        "list_id": job.mailing_list_id,
        "total": job.rows,
        "imported": job.imported,
        "skipped": job.skipped,
        "progress": round(job.progress, 4),
        "status": STATUS[SubscriberImport.Status(job.status)],
        "message": job.message,
        "created_at": rfc3339(job.created_at),
        "finished_at": rfc3339(job.finished_at),
    }


def latest(user: Any) -> SubscriberImport | None:
    """The API user's newest import (listmonk has one import at a time)."""
    return SubscriberImport.objects.filter(created_by=user).order_by("-pk").first()


def params_of(raw: str) -> dict[str, Any]:
    try:
        params = json.loads(raw or "{}")
    except json.JSONDecodeError as error:
        raise HttpError(400, f"`params` is not JSON: {error}.") from error
    if not isinstance(params, dict):
        raise HttpError(400, '`params` must be a JSON object, e.g. {"mode": "subscribe"}.')
    return params


@router.post("/import/subscribers")
def start_import(
    request: ApiRequest, file: File[UploadedFile], params: Form[str] = "{}"
) -> dict[str, Any]:
    user = request.auth
    require(user, "subscribers.add_subscriberimport", "import subscribers")
    options = params_of(params)
    mode = MODES.get(options.get("mode", "subscribe"))
    if mode is None:
        raise HttpError(400, "`mode` must be subscribe or blocklist.")
    if options.get("delim", ",") != ",":
        raise HttpError(400, "Only comma-separated files are imported; save it with commas.")
    lists = options.get("lists") or []
    if mode == SubscriberImport.Mode.SUBSCRIBE and len(lists) != 1:
        raise HttpError(400, "A subscribe import takes one list in `lists`; upload it per list.")
    mailing_list = None
    if lists:
        mailing_list = access.lists_for(user).filter(pk=lists[0]).first()
        if mailing_list is None:
            raise HttpError(404, f"List {lists[0]} not found.")
    running = latest(user)
    if running is not None and running.status in (
        SubscriberImport.Status.QUEUED,
        SubscriberImport.Status.RUNNING,
    ):
        raise HttpError(409, f"Import {running.pk} is still running; wait for it or stop it.")
    job = SubscriberImport(file=file, mode=mode, mailing_list=mailing_list, created_by=user)
    try:
        job.full_clean()
    except ValidationError as error:
        raise HttpError(400, invalid(error)) from error
    job.save()
    queues.enqueue_on_commit(queues.RUN_IMPORT, import_id=job.pk)
    return {"data": as_json(job)}


@router.get("/import/subscribers")
def import_status(request: ApiRequest) -> dict[str, Any]:
    require(request.auth, "subscribers.view_subscriberimport", "read imports")
    return {"data": as_json(latest(request.auth))}


@router.get("/import/subscribers/logs")
def import_logs(request: ApiRequest) -> dict[str, Any]:
    require(request.auth, "subscribers.view_subscriberimport", "read imports")
    job = latest(request.auth)
    if job is None:
        return {"data": ""}
    lines = [job.message] if job.message else []
    if job.error_report:
        with job.error_report.open("rb") as report:
            lines += report.read().decode(errors="replace").splitlines()[:LOG_LINES]
    return {"data": "\n".join(lines)}


@router.delete("/import/subscribers")
def stop_import(request: ApiRequest) -> dict[str, Any]:
    require(request.auth, "subscribers.add_subscriberimport", "stop imports")
    job = latest(request.auth)
    if job is not None:
        subscriber_import_stop(job=job)
        job.refresh_from_db()
    return {"data": as_json(job)}
