"""Every string a resident sees exists in every supported language."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from core.config import REPO_ROOT
from core.i18n import LANGUAGES, SUPPORTED, Catalogs, negotiate

KEYWORDS = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
ONE_FORM = {"ja", "ja-easy", "zh-Hans", "zh-Hant", "ko", "vi", "th", "id", "my"}
TRANSLATED = [code for code in SUPPORTED if code != "en"]


def source_messages() -> set[str | tuple[str, str]]:
    found = set()
    for package in ("core", "bot"):
        for _file, _line, message, _comments, _context in extract_from_dir(
            REPO_ROOT / package, method_map=[("**.py", "python")], keywords=KEYWORDS
        ):
            found.add(message)
    return found


@pytest.fixture(scope="module")
def messages():
    found = source_messages()
    assert len(found) > 50
    return found


def po_path(code: str) -> Path:
    return REPO_ROOT / "locales" / LANGUAGES[code].directory / "LC_MESSAGES" / "kigen.po"


def test_supported_languages_are_known_and_english_comes_first():
    assert SUPPORTED[0] == "en"
    assert set(SUPPORTED) <= set(LANGUAGES)


@pytest.mark.parametrize("code", TRANSLATED)
def test_catalog_is_complete(code, messages):
    catalog = read_po(po_path(code).open("rb"))
    in_catalog = {m.id for m in catalog if m.id}
    missing = messages - in_catalog
    assert not missing, f"{code} lacks {len(missing)} strings, e.g. {sorted(map(str, missing))[:3]}"
    assert not in_catalog - messages, f"{code} has strings the code no longer uses"
    assert list(catalog.check()) == []
    for message in catalog:
        if not message.id:
            continue
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        assert all(strings), f"{code}: untranslated {message.id!r}"
        assert not message.fuzzy, f"{code}: fuzzy {message.id!r}"
        source = message.id[0] if isinstance(message.id, tuple) else message.id
        wanted = sorted(re.findall(r"\{\w+\}|\d+", source))
        for string in strings:
            assert sorted(re.findall(r"\{\w+\}|\d+", string)) == wanted, (
                f"{code}: placeholders or numbers differ in {string!r}"
            )


@pytest.mark.parametrize("code", TRANSLATED)
def test_plural_forms_match_the_language(code):
    catalog = read_po(po_path(code).open("rb"))
    assert catalog.num_plurals == (1 if code in ONE_FORM else 2)


@pytest.mark.parametrize("code", TRANSLATED)
def test_plural_strings_are_translated_for_every_count(code):
    t = Catalogs(REPO_ROOT / "locales", SUPPORTED).translator(code)
    for n in (0, 1, 2, 5, 21):
        text = t.ngettext(
            "Your {document} expires on {date}: {days} day left.",
            "Your {document} expires on {date}: {days} days left.",
            n,
        )
        assert "day left" not in text and "days left" not in text


def test_the_language_menu_names_each_language_in_itself():
    assert LANGUAGES["ja"].native_name == "日本語"
    assert LANGUAGES["vi"].native_name == "Tiếng Việt"
    assert len({LANGUAGES[code].native_name for code in SUPPORTED}) == len(SUPPORTED)


def test_an_unknown_language_falls_back_to_english():
    t = Catalogs(REPO_ROOT / "locales", SUPPORTED).translator("xx")
    assert t.code == "en"
    assert t.gettext("Save") == "Save"


@pytest.mark.parametrize(
    ("tag", "code"),
    [
        ("zh-TW", "zh-Hant"),
        ("zh-hans", "zh-Hans"),
        ("zh-CN", "zh-Hans"),
        ("pt", "pt-BR"),
        ("tl", "fil"),
        ("ja-JP", "ja"),
        ("en-US", "en"),
        ("de", None),
        ("", None),
        ("???", None),
    ],
)
def test_platform_language_tags_are_negotiated(tag, code):
    assert negotiate(tag) == code


def test_the_console_is_complete_in_japanese():
    from babel.messages.extract import extract_from_dir

    templates = REPO_ROOT / "bot" / "admin" / "templates"
    used = {
        message
        for *_, message, _comments, _context in extract_from_dir(
            templates, method_map=[("**.html", "jinja2")], keywords={"_": None}
        )
    }
    assert len(used) > 40
    catalog = read_po((REPO_ROOT / "locales" / "ja" / "LC_MESSAGES" / "admin.po").open("rb"))
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    assert used <= translated, sorted(used - translated)[:5]
