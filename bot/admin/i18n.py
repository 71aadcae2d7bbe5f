"""The console's own strings in English and Japanese (``locales/<lang>/LC_MESSAGES/admin.po``)."""

from __future__ import annotations

from pathlib import Path

from babel.support import NullTranslations

from core.i18n import compile_po

CONSOLE_LANGUAGES = ("en", "ja")


class ConsoleCatalogs:
    def __init__(self, locales_dir: Path) -> None:
        self._translations: dict[str, NullTranslations] = {"en": NullTranslations()}
        path = locales_dir / "ja" / "LC_MESSAGES" / "admin.po"
        if path.exists():
            self._translations["ja"] = compile_po(path, "ja", "admin")

    def pick(self, requested: str | None, accept_language: str) -> str:
        if requested in self._translations:
            return requested
        for part in accept_language.split(","):
            if part.strip().lower().startswith("ja") and "ja" in self._translations:
                return "ja"
        return "en"

    def gettext(self, language: str):  # type: ignore[no-untyped-def]
        return self._translations.get(language, self._translations["en"]).gettext
