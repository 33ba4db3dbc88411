"""What an uploaded subscriber file must be before it is stored and queued: a CSV text file
of a bounded size. Checked when the import is saved, so that a workbook, a binary or a huge
file is refused at once with what to do, instead of failing (or filling a disk) on a worker."""

from __future__ import annotations

from django.conf import settings
from django.core.files import File

EXTENSIONS = (".csv", ".txt")
# The longest physical line an import reads; longer lines are reported and skipped.
MAX_LINE_BYTES = 1_000_000

# How files people mistake for CSV begin.
_SIGNATURES = {
    b"PK\x03\x04": "an Excel workbook or a zip archive",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook",
    b"%PDF": "a PDF document",
    b"\x1f\x8b": "a gzip archive",
}
_SAVE_AS = "open it in a spreadsheet and save it as 'CSV UTF-8', then upload that file."


def problem(upload: File) -> str | None:
    """Why the file cannot be imported, or None."""
    name = (upload.name or "").lower()
    if not name.endswith(EXTENSIONS):
        return f"The file must be a CSV file (.csv or .txt), not {name.rpartition('/')[2]!r}; " + (
            _SAVE_AS
        )
    limit = settings.IMPORT_MAX_MB * 1_000_000
    if upload.size is not None and upload.size > limit:
        return (
            f"The file is {upload.size / 1_000_000:,.0f} MB; an import may be at most "
            f"{settings.IMPORT_MAX_MB:,} MB (IMPORT_MAX_MB). Split it into smaller files."
        )
    upload.seek(0)
    start = upload.read(8192)
    upload.seek(0)
    if isinstance(start, str):
        start = start.encode()
    for signature, kind in _SIGNATURES.items():
        if start.startswith(signature):
            return f"The file is {kind}, not CSV text; {_SAVE_AS}"
    if b"\x00" in start and not start.startswith((b"\xff\xfe", b"\xfe\xff")):
        return f"The file holds binary data, not CSV text; {_SAVE_AS}"
    return None
