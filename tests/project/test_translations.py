"""The translations in locale/: complete, with every placeholder kept, and compiled as
committed (./dev messages writes both files)."""

from __future__ import annotations

import re

import polib
import pytest

from devstack import messages

PLACEHOLDER = re.compile(r"%\(\w+\)[sdr]|%%")
CATALOGUES = messages.catalogues()


def test_there_are_at_least_two_translations():
    assert {po.parent.parent.name for po in CATALOGUES} >= {"de", "fr"}


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: p.parent.parent.name)
def test_every_string_is_translated_and_keeps_its_placeholders(po):
    catalogue = polib.pofile(str(po))
    assert not catalogue.metadata_is_fuzzy
    assert catalogue.untranslated_entries() == []
    assert catalogue.fuzzy_entries() == []
    for entry in catalogue.translated_entries():
        wanted = sorted(PLACEHOLDER.findall(entry.msgid))
        translations = entry.msgstr_plural.values() if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            assert sorted(PLACEHOLDER.findall(text)) == wanted, (entry.msgid, text)


@pytest.mark.parametrize("po", CATALOGUES, ids=lambda p: p.parent.parent.name)
def test_the_compiled_catalogue_is_the_one_committed(po):
    mo = po.with_suffix(".mo")
    assert mo.exists() and mo.read_bytes() == messages.compiled(po), (
        f"{mo} is out of date: run ./dev messages and commit it"
    )
