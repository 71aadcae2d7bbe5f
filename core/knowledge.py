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

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import sparse

from core.i18n import LANGUAGES
from core.language import LanguageDetector
from core.textnorm import features, normalise

#: A match at least this similar answers at once.
ANSWER_THRESHOLD = 0.42
#: Below this nothing matches; between the two Kigen asks "did you mean".
CLARIFY_THRESHOLD = 0.28
#: Two entries within this distance of each other are too close to choose between.
CLOSE_MARGIN = 0.04
#: Below this not even the topic of the question is guessed (for the fallback helpline).
TOPIC_THRESHOLD = 0.15


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

    def __init__(self, meta: dict[str, EntryMeta], texts: dict[str, dict[str, EntryText]]) -> None:
        self.meta = meta
        self.texts = texts
        self.languages = tuple(texts)
        self._entry_ids = list(meta)
        self._build_index()
        self.detector = LanguageDetector(
            {
                lang: [piece for entry in entries.values() for piece in _samples(entry)]
                for lang, entries in texts.items()
            }
        )

    @classmethod
    def load(cls, locales_dir: Path, languages: Iterable[str]) -> KnowledgeBase:
        """Read the content files of ``languages``; raises ``ValueError`` on bad content."""
        meta_doc = _read_yaml(locales_dir / "faq.yaml")
        meta = {item["id"]: _parse_meta(item) for item in meta_doc["entries"]}
        texts: dict[str, dict[str, EntryText]] = {}
        for lang in languages:
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
        return cls(meta, texts)

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
        vector = self._vectorise(features(normalise(question)))
        if vector is None:
            return Match(Verdict.NONE, ())
        doc_scores = np.asarray((self._matrix @ vector).todense()).ravel()
        entry_scores = np.maximum.reduceat(doc_scores, self._entry_starts)
        order = np.argsort(-entry_scores)[:3]
        candidates = tuple((self._entry_ids[i], float(entry_scores[i])) for i in order)
        best_score = candidates[0][1]
        second_score = candidates[1][1] if len(candidates) > 1 else 0.0
        topic = self.meta[candidates[0][0]].topic if best_score >= TOPIC_THRESHOLD else None
        if best_score >= ANSWER_THRESHOLD and best_score - second_score >= CLOSE_MARGIN:
            return Match(Verdict.ANSWER, candidates[:1], topic)
        if best_score >= CLARIFY_THRESHOLD:
            close = tuple(c for c in candidates if c[1] >= max(CLARIFY_THRESHOLD, best_score - 0.1))
            if len(close) == 1:
                return Match(Verdict.ANSWER, close, topic)
            return Match(Verdict.CLARIFY, close, topic)
        return Match(Verdict.NONE, candidates, topic)

    def _build_index(self) -> None:
        docs: list[list[str]] = []
        starts: list[int] = []
        for entry_id in self._entry_ids:
            starts.append(len(docs))
            for entries in self.texts.values():
                entry = entries.get(entry_id)
                if entry is not None:
                    docs.extend(features(normalise(q)) for q in (entry.title, *entry.questions))
        if len(starts) != len(set(starts)):
            raise ValueError("every entry needs at least one title or question")
        document_frequency: Counter[str] = Counter()
        for doc in docs:
            document_frequency.update(set(doc))
        self._vocabulary = {feature: i for i, feature in enumerate(document_frequency)}
        total = len(docs)
        self._idf = np.array(
            [math.log((1 + total) / (1 + document_frequency[f])) + 1 for f in self._vocabulary]
        )
        rows, cols, values = [], [], []
        for row, doc in enumerate(docs):
            weights = self._weights(doc)
            for col, value in weights.items():
                rows.append(row)
                cols.append(col)
                values.append(value)
        self._matrix = sparse.csr_matrix(
            (values, (rows, cols)), shape=(total, len(self._vocabulary)), dtype=np.float32
        )
        self._entry_starts = np.array(starts)

    def _weights(self, doc: list[str]) -> dict[int, float]:
        counts = Counter(self._vocabulary[f] for f in doc if f in self._vocabulary)
        weights = {col: (1 + math.log(n)) * self._idf[col] for col, n in counts.items()}
        norm = math.sqrt(sum(w * w for w in weights.values())) or 1.0
        return {col: w / norm for col, w in weights.items()}

    def _vectorise(self, doc: list[str]) -> sparse.csc_matrix | None:
        weights = self._weights(doc)
        if not weights:
            return None
        cols = list(weights)
        return sparse.csc_matrix(
            (list(weights.values()), (cols, [0] * len(cols))),
            shape=(len(self._vocabulary), 1),
            dtype=np.float32,
        )


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
