"""The FAQ knowledge base: load it, match a question to an entry, answer with sources.

Content lives in ``locales/faq.yaml`` (what is the same in every language: sources, the
date the facts were checked, related entries, a caution flag) and in
``locales/<lang>/faq.yaml`` (title, answer and question phrasings per language).

Matching compares the question with every phrasing of every language at once: TF-IDF
over words and character n-grams (so Japanese and Chinese need no word boundaries and
typos or romaji still share most n-grams), cosine similarity through one sparse matrix
product, and the best phrasing of each entry as the entry's score.
"""

from __future__ import annotations

import hashlib
import math
import os
import pickle
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import platformdirs
import yaml
from scipy import sparse

from core.i18n import LANGUAGES
from core.language import LanguageDetector
from core.textnorm import features, normalise

#: How much the closest phrasing counts against the entry's whole vocabulary in a
#: language (its phrasings and its answer).
PHRASING_WEIGHT = 0.3
_CODE = [
    Path(__file__),
    Path(__file__).with_name("textnorm.py"),
    Path(__file__).with_name("language.py"),
]
_LOADED: dict[str, KnowledgeBase] = {}

#: The pseudo-entry of off-topic questions (``locales/<lang>/offtopic.yaml``): a question
#: closest to these gets no answer.
OFFTOPIC = "_offtopic"
#: Features found in more than this share of (entry, language) bundles are ignored.
COMMON_SHARE = 0.35
#: A match at least this similar answers at once.
ANSWER_THRESHOLD = 0.3
#: A weaker match answers when it stands out: RATIO times as similar as the next entry.
WEAK_THRESHOLD = 0.15
RATIO = 1.2
#: Below this nothing matches; between it and an answer Kigen asks "did you mean".
CLARIFY_THRESHOLD = 0.12
#: Below this not even the topic of the question is guessed (for the fallback helpline).
TOPIC_THRESHOLD = 0.1


class Verdict(StrEnum):
    ANSWER = "answer"
    CLARIFY = "clarify"
    NONE = "none"


@dataclass(frozen=True, slots=True)
class EntryMeta:
    """What an entry has in every language."""

    id: str
    topic: str
    sources: tuple[str, ...]
    checked: date
    related: tuple[str, ...]
    caution: bool


@dataclass(frozen=True, slots=True)
class EntryText:
    """An entry in one language."""

    title: str
    answer: str
    questions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Match:
    """The result of matching a question: ranked candidate entries and the verdict."""

    verdict: Verdict
    candidates: tuple[tuple[str, float], ...]
    topic: str | None = None

    @property
    def best(self) -> str | None:
        return self.candidates[0][0] if self.candidates else None


class KnowledgeBase:
    """Entries in every language and the index that matches questions to them."""

    def __init__(
        self,
        meta: dict[str, EntryMeta],
        texts: dict[str, dict[str, EntryText]],
        offtopic: dict[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.meta = meta
        self.texts = {
            lang: {**entries, OFFTOPIC: EntryText("", "", (offtopic or {}).get(lang, ()))}
            if (offtopic or {}).get(lang)
            else entries
            for lang, entries in texts.items()
        }
        self.languages = tuple(texts)
        self._entry_ids = [*meta, OFFTOPIC] if offtopic else list(meta)
        self._build_index()
        self.detector = LanguageDetector(
            {
                lang: [piece for entry in entries.values() for piece in _samples(entry)]
                for lang, entries in texts.items()
            }
        )

    @classmethod
    def load(cls, locales_dir: Path, languages: Iterable[str]) -> KnowledgeBase:
        """The knowledge base of ``languages``, built once per content version.

        Building the index takes seconds; the result is kept in memory and in the user's
        cache folder, keyed by a hash of the content files and of the matcher's code, so a
        start with unchanged content only unpickles it.
        """
        languages = tuple(languages)
        files = [locales_dir / "faq.yaml"]
        for lang in languages:
            folder = locales_dir / LANGUAGES[lang].directory
            files += [folder / "faq.yaml", folder / "offtopic.yaml"]
        digest = hashlib.sha256(repr(languages).encode())
        for path in [*files, *_CODE]:
            digest.update(path.name.encode())
            digest.update(path.read_bytes() if path.exists() else b"-")
        key = digest.hexdigest()[:32]
        if key in _LOADED:
            return _LOADED[key]
        cache = Path(platformdirs.user_cache_dir("kigen", appauthor=False)) / f"kb-{key}.pickle"
        try:
            kb = pickle.loads(cache.read_bytes())
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError):
            kb = cls.read(locales_dir, languages)
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                temporary = cache.with_suffix(f".{os.getpid()}.tmp")
                temporary.write_bytes(pickle.dumps(kb, protocol=pickle.HIGHEST_PROTOCOL))
                temporary.replace(cache)
            except OSError:
                pass  # a read-only home only makes the next start slower
        _LOADED[key] = kb
        return kb

    @classmethod
    def read(cls, locales_dir: Path, languages: Iterable[str]) -> KnowledgeBase:
        """Read the content files of ``languages`` and build the index (no cache)."""
        meta_doc = _read_yaml(locales_dir / "faq.yaml")
        meta = {item["id"]: _parse_meta(item) for item in meta_doc["entries"]}
        texts: dict[str, dict[str, EntryText]] = {}
        offtopic: dict[str, tuple[str, ...]] = {}
        for lang in languages:
            negatives = locales_dir / LANGUAGES[lang].directory / "offtopic.yaml"
            if negatives.exists():
                offtopic[lang] = tuple(str(q) for q in _read_yaml(negatives).get("questions") or ())
            doc = _read_yaml(locales_dir / LANGUAGES[lang].directory / "faq.yaml")
            texts[lang] = {
                entry_id: EntryText(
                    title=str(item["title"]),
                    answer=str(item["answer"]).strip(),
                    questions=tuple(str(q) for q in item.get("questions") or ()),
                )
                for entry_id, item in (doc.get("entries") or {}).items()
                if entry_id in meta
            }
        return cls(meta, texts, offtopic)

    def text(self, entry_id: str, lang: str) -> EntryText:
        """The entry in ``lang``, or in English where that language lacks it."""
        return self.texts.get(lang, {}).get(entry_id) or self.texts["en"][entry_id]

    def topics(self) -> list[str]:
        """Topics in the order of their first entry."""
        return list(dict.fromkeys(m.topic for m in self.meta.values()))

    def entries_in(self, topic: str) -> list[str]:
        return [m.id for m in self.meta.values() if m.topic == topic]

    def match(self, question: str) -> Match:
        """Find the entries that answer ``question``, best first."""
        weights = self._weights(features(normalise(question)))
        if not weights:
            return Match(Verdict.NONE, ())
        phrasing_scores = _scores(self._matrix, weights)
        bundle_scores = _scores(self._bundles, weights)
        entry_scores = PHRASING_WEIGHT * np.maximum.reduceat(phrasing_scores, self._entry_starts)
        entry_scores += (1 - PHRASING_WEIGHT) * np.maximum.reduceat(
            bundle_scores, self._bundle_starts
        )
        order = np.argsort(-entry_scores)[:4]
        ranked = [(self._entry_ids[i], float(entry_scores[i])) for i in order]
        candidates = tuple(c for c in ranked if c[0] != OFFTOPIC)[:3]
        if ranked[0][0] == OFFTOPIC:
            return Match(Verdict.NONE, candidates)
        best_score = ranked[0][1]
        second_score = ranked[1][1] if len(ranked) > 1 else 0.0
        topic = self.meta[candidates[0][0]].topic if best_score >= TOPIC_THRESHOLD else None
        stands_out = best_score >= WEAK_THRESHOLD and best_score >= RATIO * second_score
        if best_score >= ANSWER_THRESHOLD or stands_out:
            return Match(Verdict.ANSWER, candidates[:1], topic)
        if best_score >= CLARIFY_THRESHOLD:
            close = tuple(c for c in candidates if c[1] >= best_score / RATIO)
            return Match(Verdict.CLARIFY, close, topic)
        return Match(Verdict.NONE, candidates, topic)

    def _build_index(self) -> None:
        docs: list[list[str]] = []
        starts: list[int] = []
        bundle_docs: list[list[str]] = []
        bundle_starts: list[int] = []
        bundle_frequency: Counter[str] = Counter()
        for entry_id in self._entry_ids:
            starts.append(len(docs))
            bundle_starts.append(len(bundle_docs))
            for entries in self.texts.values():
                entry = entries.get(entry_id)
                if entry is not None:
                    phrasings = [features(normalise(q)) for q in (entry.title, *entry.questions)]
                    docs.extend(phrasings)
                    bundle = [f for doc in phrasings for f in doc]
                    bundle += features(normalise(entry.answer))
                    bundle_docs.append(bundle)
                    bundle_frequency.update(set(bundle))
        if len(starts) != len(set(starts)):
            raise ValueError("every entry needs at least one title or question")
        # IDF over (entry, language) bundles rather than single phrasings: words every
        # entry uses ("how", "card", "what") weigh next to nothing, words of one entry a lot.
        bundles = sum(len(entries) for entries in self.texts.values())
        # Features in most bundles ("the", "ー", "की") tell entries apart no better than
        # chance and make every lookup slow: they are left out of documents and questions.
        common = {f for f, n in bundle_frequency.items() if n > COMMON_SHARE * bundles}
        self._ignored = frozenset(common)
        self._vocabulary = {
            feature: i for i, feature in enumerate(f for f in bundle_frequency if f not in common)
        }
        self._idf = np.array(
            [math.log((1 + bundles) / (1 + bundle_frequency[f])) for f in self._vocabulary]
        )
        self._unseen_idf = math.log(1 + bundles)
        self._matrix = self._matrix_of(docs)
        self._entry_starts = np.array(starts)
        self._bundles = self._matrix_of(bundle_docs)
        self._bundle_starts = np.array(bundle_starts)

    def _matrix_of(self, docs: list[list[str]]) -> sparse.csc_matrix:
        rows, cols, values = [], [], []
        for row, doc in enumerate(docs):
            for col, value in self._weights(doc).items():
                rows.append(row)
                cols.append(col)
                values.append(value)
        # Column-major: the documents of a feature are one slice (a posting list).
        return sparse.csc_matrix(
            (values, (rows, cols)), shape=(len(docs), len(self._vocabulary)), dtype=np.float32
        )

    def _weights(self, doc: list[str]) -> dict[int, float]:
        """Unit-length TF-IDF weights of the known features of ``doc``.

        Features the knowledge base has never seen count in the length with the highest
        IDF: a question mostly about something else ("the weather in Osaka") keeps a low
        similarity even where its few common words match.
        """
        counts = Counter(doc)
        weights: dict[int, float] = {}
        unknown = 0.0
        for feature, n in counts.items():
            if feature in self._ignored:
                continue
            col = self._vocabulary.get(feature)
            if col is None:
                unknown += ((1 + math.log(n)) * self._unseen_idf) ** 2
            else:
                weights[col] = (1 + math.log(n)) * self._idf[col]
        norm = math.sqrt(sum(w * w for w in weights.values()) + unknown) or 1.0
        return {col: w / norm for col, w in weights.items()}


def _scores(matrix: sparse.csc_matrix, weights: dict[int, float]) -> np.ndarray:
    """Dot products of every row of ``matrix`` with a sparse query: the posting lists of
    the query's features, weighted and summed per row (much faster than a sparse product
    for a query of a few dozen features). The lists are gathered in a few array
    operations for all features at once, not a few per feature."""
    cols = np.fromiter(weights, dtype=np.intp, count=len(weights))
    starts, ends = matrix.indptr[cols], matrix.indptr[cols + 1]
    lengths = ends - starts
    # The positions of every list, one after the other: each list's start, repeated over
    # its length, plus the place within it.
    within = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    positions = np.repeat(starts, lengths) + within
    # float64 like the weights themselves: the products and sums are those of a product
    # feature by feature, to the last bit.
    factors = np.fromiter(weights.values(), dtype=np.float64, count=len(weights))
    values = matrix.data[positions] * np.repeat(factors, lengths)
    return np.bincount(matrix.indices[positions], weights=values, minlength=matrix.shape[0])


def _samples(entry: EntryText) -> list[str]:
    return [entry.title, entry.answer, *entry.questions]


def _read_yaml(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as fh:
        return yaml.load(fh, Loader=yaml.CSafeLoader) or {}


def _parse_meta(item: dict[str, Any]) -> EntryMeta:
    checked = item["checked"]
    return EntryMeta(
        id=str(item["id"]),
        topic=str(item["topic"]),
        sources=tuple(item.get("sources") or ()),
        checked=checked if isinstance(checked, date) else date.fromisoformat(str(checked)),
        related=tuple(item.get("related") or ()),
        caution=bool(item.get("caution", False)),
    )
