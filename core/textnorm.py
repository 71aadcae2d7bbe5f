"""Text normalisation and the features the matcher and the language detector use."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def normalise(text: str, *, keep_accents: bool = False) -> str:
    """NFKC, case-folded, punctuation to spaces; accents dropped unless asked to keep."""
    text = unicodedata.normalize("NFKC", text).casefold()
    if not keep_accents:
        text = strip_accents(text)
    spaced = "".join(" " if unicodedata.category(char)[0] in "PSZC" else char for char in text)
    return _SPACES.sub(" ", spaced).strip()


def strip_accents(text: str) -> str:
    """Drop Latin combining marks (ã → a, ệ → e, đ → d); other scripts are kept as they are."""
    decomposed = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    kept: list[str] = []
    base_is_latin = False
    for char in decomposed:
        if not unicodedata.combining(char):
            base_is_latin = char.isascii()
            kept.append(char)
        elif not base_is_latin:
            kept.append(char)
    return unicodedata.normalize("NFC", "".join(kept))


def is_unspaced(char: str) -> bool:
    """Scripts written without spaces between words (CJK, kana, Thai, Myanmar) or whose
    words are long compounds (Hangul): matched on character n-grams."""
    code = ord(char)
    return (
        0x3040 <= code <= 0x30FF  # hiragana, katakana
        or 0x3400 <= code <= 0x9FFF  # CJK ideographs
        or 0xF900 <= code <= 0xFAFF
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0x0E00 <= code <= 0x0E7F  # Thai
        or 0x1000 <= code <= 0x109F  # Myanmar
    )


def features(text: str) -> list[str]:
    """Bag of features of a normalised text: words and character 3-grams of spaced
    scripts, character 1- to 3-grams of unspaced ones."""
    out: list[str] = []
    for token in text.split():
        for run, unspaced in _split_runs(token):
            if unspaced:
                out.extend(run)
                out.extend(run[i : i + 2] for i in range(len(run) - 1))
                out.extend(run[i : i + 3] for i in range(len(run) - 2))
            else:
                out.append(f"w:{run}")
                padded = f"_{run}_"
                out.extend(padded[i : i + 3] for i in range(len(padded) - 2))
    return out


def _split_runs(token: str) -> list[tuple[str, bool]]:
    runs: list[tuple[str, bool]] = []
    for char in token:
        unspaced = is_unspaced(char)
        if runs and runs[-1][1] == unspaced:
            runs[-1] = (runs[-1][0] + char, unspaced)
        else:
            runs.append((char, unspaced))
    return runs
