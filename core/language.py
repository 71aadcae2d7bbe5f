"""Which language a resident wrote in.

The script decides first (Hangul, Thai, Myanmar, Devanagari, kana, Han, Latin); within a
script a small naive-Bayes model of character n-grams, trained on Kigen's own content,
tells the languages apart (Japanese from Chinese, Portuguese from Spanish...).
"""

from __future__ import annotations

import math
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from core.textnorm import normalise

_SCRIPT_LANGUAGES = {
    "hangul": ("ko",),
    "thai": ("th",),
    "myanmar": ("my",),
    "devanagari": ("ne",),
    "kana": ("ja", "ja-easy"),
    "han": ("ja", "zh-Hans", "zh-Hant"),
    "kana+han": ("ja", "ja-easy", "zh-Hans", "zh-Hant"),
    "latin": ("en", "vi", "fil", "pt-BR", "es", "id"),
}
#: Letters only Vietnamese uses (â, ê and ô are Portuguese too).
_VIETNAMESE_LETTERS = set("ăđơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ")


@dataclass(frozen=True, slots=True)
class Detection:
    """The detected language and how sure the detector is (0 to 1)."""

    language: str
    confidence: float


def _script(char: str) -> str | None:
    code = ord(char)
    if 0xAC00 <= code <= 0xD7AF or 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F:
        return "hangul"
    if 0x0E00 <= code <= 0x0E7F:
        return "thai"
    if 0x1000 <= code <= 0x109F:
        return "myanmar"
    if 0x0900 <= code <= 0x097F:
        return "devanagari"
    if 0x3040 <= code <= 0x30FF:
        return "kana"
    if 0x3400 <= code <= 0x9FFF or 0xF900 <= code <= 0xFAFF:
        return "han"
    if char.isalpha() and unicodedata.name(char, "").startswith("LATIN"):
        return "latin"
    return None


def _ngrams(text: str) -> list[str]:
    padded = f"_{text.replace(' ', '_')}_"
    grams = list(padded)
    grams += [padded[i : i + 2] for i in range(len(padded) - 1)]
    grams += [padded[i : i + 3] for i in range(len(padded) - 2)]
    return grams


class LanguageDetector:
    """Detects the language of short texts among the languages it was trained on."""

    def __init__(self, samples: Mapping[str, Iterable[str]]) -> None:
        counts: dict[str, Counter[str]] = {}
        for language, texts in samples.items():
            counts[language] = Counter()
            for text in texts:
                counts[language].update(_ngrams(normalise(text, keep_accents=True)))
        #: One row per language, one column per n-gram seen in any of them; the last column
        #: is for an n-gram never seen. Scoring a text looks each of its n-grams up once,
        #: whatever the number of candidate languages.
        self._rows = {language: row for row, language in enumerate(counts)}
        grams = {gram for language_counts in counts.values() for gram in language_counts}
        self._columns = {gram: column for column, gram in enumerate(grams)}
        self._log_probs = np.empty((len(counts), len(grams) + 1))
        for language, language_counts in counts.items():
            total = sum(language_counts.values()) + len(language_counts) + 1
            row = self._log_probs[self._rows[language]]
            row[:] = math.log(1 / total)
            for gram, count in language_counts.items():
                row[self._columns[gram]] = math.log((count + 1) / total)

    def detect(self, text: str) -> Detection | None:
        """The most likely language, or None for text with no letters."""
        scripts = Counter(s for s in map(_script, text) if s)
        if not scripts:
            return None
        if scripts["kana"] and scripts["han"]:
            # Chinese residents write Japanese terms (在留カード) in Chinese sentences:
            # kana alone does not make a text Japanese, the model decides.
            scripts["kana+han"] = scripts.pop("kana") + scripts.pop("han")
        # An ideograph carries about a word; a Latin letter a fraction of one.
        for script in ("kana", "han", "kana+han"):
            scripts[script] *= 3
        script = scripts.most_common(1)[0][0]
        candidates = [lang for lang in _SCRIPT_LANGUAGES[script] if lang in self._rows]
        if not candidates:
            return None
        if len(candidates) == 1:
            return Detection(candidates[0], 1.0)
        if script == "latin" and "vi" in candidates and _VIETNAMESE_LETTERS & set(text.lower()):
            return Detection("vi", 1.0)
        grams = _ngrams(normalise(text, keep_accents=True))
        scores = sorted(zip(self._scores(candidates, grams), candidates, strict=True), reverse=True)
        (best, language), (second, _) = scores[0], scores[1]
        if script == "kana":
            return Detection(language, 1.0)  # kana alone is Japanese; the model picks the register
        margin = (best - second) / max(len(grams), 1)
        return Detection(language, min(0.99, margin * 4))  # 1.0 is kept for a script of its own

    def _scores(self, languages: list[str], grams: list[str]) -> list[float]:
        """Log-likelihood of ``grams`` in each of ``languages``."""
        columns = [self._columns.get(gram, -1) for gram in grams]
        rows = [self._rows[language] for language in languages]
        return self._log_probs[np.ix_(rows, columns)].sum(axis=1).tolist()
