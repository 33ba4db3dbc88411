"""The translations in locale/: `./dev messages` finds the strings marked for translation
(Django's makemessages, which needs GNU gettext's xgettext) and compiles every catalogue
(.po to .mo, with polib: no msgfmt needed). Translate the new entries in each .po, then run
it again and commit both files; tests/project/test_translations.py checks they agree."""

from __future__ import annotations

import subprocess
from pathlib import Path

import polib

ROOT = Path(__file__).resolve().parent.parent
LOCALE = ROOT / "locale"
LANGUAGES = ("de", "fr")
IGNORED = [".venv", ".state", "node_modules", "tests", "bench", "staticfiles", "docs"]


def catalogues() -> list[Path]:
    return sorted(LOCALE.glob("*/LC_MESSAGES/django.po"))


def compiled(po: Path) -> bytes:
    """The .mo of a catalogue, as it is committed."""
    return polib.pofile(str(po)).to_binary()


def compile_all() -> list[Path]:
    written = []
    for po in catalogues():
        mo = po.with_suffix(".mo")
        mo.write_bytes(compiled(po))
        written.append(mo)
    return written


def extract(python: str) -> None:
    argv = [python, "manage.py", "makemessages", "--no-wrap", "--no-location"]
    argv += [f"--locale={language}" for language in LANGUAGES]
    argv += [f"--ignore={name}" for name in IGNORED] + ["--ignore=workbench/editor/*"]
    subprocess.run(argv, cwd=ROOT, check=True)
