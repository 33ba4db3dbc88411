"""Where files live (read by settings.base): private uploads (subscriber imports and their
reports) in MEDIA_ROOT, never served; the media library (campaign images and attachments) in
the `library` storage, public by design (images in e-mails must load for every recipient):
a folder served under /media/library/ by default, or an S3-compatible bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from settings.environment import read_int, read_secret, read_str

MEDIA_ROOT = read_str(
    "MEDIA_ROOT",
    "Folder for uploaded files (imports, the media library); shared by the web app and the "
    "workers.",
    default="media",
)
LIBRARY_URL = "/media/library/"
S3_BUCKET = read_str(
    "MEDIA_S3_BUCKET",
    "S3-compatible bucket for the media library (django-storages); empty: MEDIA_ROOT/library.",
    default="",
)
_s3: dict[str, Any] = {
    "bucket_name": S3_BUCKET,
    "endpoint_url": read_str(
        "MEDIA_S3_ENDPOINT_URL", "The S3 endpoint (MinIO, R2, …); empty: AWS.", default=""
    )
    or None,
    "region_name": read_str("MEDIA_S3_REGION", "The bucket's region.", default="") or None,
    "access_key": read_str("MEDIA_S3_ACCESS_KEY_ID", "The bucket's access key id.", default="")
    or None,
    "secret_key": read_secret(
        "MEDIA_S3_SECRET_ACCESS_KEY", "The bucket's secret access key.", default=""
    )
    or None,
    "custom_domain": read_str(
        "MEDIA_S3_CUSTOM_DOMAIN",
        "Host that serves the bucket (a CDN); empty: the bucket's.",
        default="",
    )
    or None,
    # Library files are public (images in e-mails): plain URLs, no signed expiring ones.
    "querystring_auth": False,
    "default_acl": None,
    "file_overwrite": False,
}
LIBRARY = (
    {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": {**_s3, "location": "library"}}
    if S3_BUCKET
    else {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(Path(MEDIA_ROOT) / "library"), "base_url": LIBRARY_URL},
    }
)
MEDIA_MAX_BYTES = read_int(
    "MEDIA_MAX_BYTES", "Largest file the media library takes, in bytes.", 10 * 1024 * 1024, 1024
)
ATTACHMENTS_MAX_BYTES = read_int(
    "ATTACHMENTS_MAX_BYTES",
    "Most bytes of attachments one campaign or transactional template may carry (before "
    "encoding, which adds a third).",
    5 * 1024 * 1024,
    1024,
)
