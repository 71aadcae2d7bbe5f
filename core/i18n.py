"""Languages, locale negotiation and the gettext catalogs of interface strings.

Catalogs live in ``locales/<dir>/LC_MESSAGES/kigen.po`` and are compiled in memory the
first time a language is used (no ``.mo`` file is committed or needed). One process serves
many residents, so a :class:`Translator` is passed around instead of a global ``_``.
"""

from __future__ import annotations

import functools
import io
import threading
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, get_timezone_location
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

DOMAIN = "kigen"


@dataclass(frozen=True, slots=True)
class Language:
    """A language Kigen speaks.

    Args:
        code: Kigen's code, stored on the user (``pt-BR``, ``zh-Hant``, ``ja-easy``).
        locale: The CLDR locale used to format dates.
        native_name: The language's name in itself, for the language menu.
    """

    code: str
    locale: str
    native_name: str

    @property
    def directory(self) -> str:
        """The folder under ``locales/`` holding this language's files."""
        return self.code.replace("-", "_")


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", "en", "English"),
        Language("ja", "ja", "日本語"),
        Language("ja-easy", "ja", "やさしいにほんご"),
        Language("zh-Hans", "zh_Hans", "简体中文"),
        Language("zh-Hant", "zh_Hant", "繁體中文"),
        Language("ko", "ko", "한국어"),
        Language("vi", "vi", "Tiếng Việt"),
        Language("fil", "fil", "Filipino"),
        Language("ne", "ne", "नेपाली"),
        Language("pt-BR", "pt_BR", "Português"),
        Language("es", "es", "Español"),
        Language("id", "id", "Bahasa Indonesia"),
        Language("th", "th", "ภาษาไทย"),
        Language("my", "my", "မြန်မာ"),
    )
}
DEFAULT_LANGUAGE = "en"
#: The languages with complete interface strings and FAQ content, in menu order.
SUPPORTED: tuple[str, ...] = tuple(LANGUAGES)


def negotiate(tag: str | None) -> str | None:
    """Map a platform language tag (``zh-TW``, ``pt``, ``tl``, ``ja-JP``) to a Kigen
    language code, or ``None`` when Kigen does not speak it."""
    if not tag:
        return None
    if tag in LANGUAGES:
        return tag
    try:
        loc = Locale.parse(tag.strip().replace("_", "-"), sep="-")
    except (ValueError, UnknownLocaleError):
        return None
    if loc.language == "zh":
        traditional = loc.script == "Hant" or loc.territory in {"TW", "HK", "MO"}
        return "zh-Hant" if traditional else "zh-Hans"
    if loc.language == "pt":
        return "pt-BR"
    if loc.language in {"fil", "tl"}:
        return "fil"
    return loc.language if loc.language in LANGUAGES else None


class Translator:
    """Interface strings and date formats in one language."""

    def __init__(self, language: Language, translations: NullTranslations) -> None:
        self.language = language
        self._translations = translations

    @property
    def code(self) -> str:
        return self.language.code

    def gettext(self, message: str) -> str:
        return self._translations.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._translations.ngettext(singular, plural, n)

    def format_date(self, day: date) -> str:
        """A date written the way the language writes it, with Western digits."""
        return _long_date(day, self.language.locale)

    def format_zone(self, zone: str) -> str:
        """A time zone by its place, in this language ("Vietnam Time", "ベトナム時間")."""
        return get_timezone_location(zone, locale=self.language.locale)


class Catalogs:
    """The compiled catalogs of every supported language, loaded on first use."""

    def __init__(self, locales_dir: Path, supported: tuple[str, ...]) -> None:
        self.locales_dir = locales_dir
        self.supported = supported
        self._cache: dict[str, Translator] = {}
        self._lock = threading.Lock()

    def po_path(self, code: str) -> Path:
        return self.locales_dir / LANGUAGES[code].directory / "LC_MESSAGES" / f"{DOMAIN}.po"

    def translator(self, code: str) -> Translator:
        """The translator for ``code``; unknown codes get the default language."""
        if code not in self.supported:
            code = DEFAULT_LANGUAGE
        with self._lock:
            if code not in self._cache:
                self._cache[code] = Translator(LANGUAGES[code], self._compile(code))
            return self._cache[code]

    def _compile(self, code: str) -> NullTranslations:
        path = self.po_path(code)
        if code == DEFAULT_LANGUAGE and not path.exists():
            return NullTranslations()
        return compile_po(path, LANGUAGES[code].locale, DOMAIN)


def compile_po(path: Path, locale: str, domain: str) -> Translations:
    """Compile a .po file in memory (no .mo file is written or needed)."""
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=locale, domain=domain)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer, domain=domain)


@functools.lru_cache(maxsize=4096)
def _long_date(day: date, locale: str) -> str:
    return format_date(day, "long", locale=locale)


def N_(message: str) -> str:
    """Mark a string for extraction where it is translated later (tables, constants)."""
    return message
