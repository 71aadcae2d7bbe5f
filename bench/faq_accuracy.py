"""Score the FAQ answers by the rules of ../shared/eval/README.md.

Every question goes through a real ``kigen ask --jsonl`` process, as a new user with no
language hint, on an empty database. Prints accuracy per language and overall, and the
questions that failed.

    .venv/bin/python bench/faq_accuracy.py [SET.jsonl ...]

Without arguments it scores the public development set and Kigen's own set in
tests/data/faq_questions.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SETS = [
    REPO.parent / "shared" / "eval" / "faq_dev.jsonl",
    REPO / "tests" / "data" / "faq_questions.jsonl",
]
TOPICS = REPO.parent / "shared" / "eval" / "topics.json"

COMMON_WORDS = {
    "en": r"\b(the|you|your|is|are|and|to|of|can|at)\b",
    "pt": r"\b(você|seu|sua|de|não|para|com|o|a|é|do|da)\b",
    "es": r"\b(usted|su|de|no|para|con|el|la|es|del|puede)\b",
    "id": r"\b(anda|dan|yang|di|untuk|tidak|dengan|bisa|ini|ke)\b",
    "tl": r"\b(ang|ng|sa|mo|mga|ay|po|na|kung|para)\b",
}
SCRIPTS = {
    "ko": r"[\uac00-\ud7af]",
    "th": r"[\u0e00-\u0e7f]",
    "my": r"[\u1000-\u109f]",
    "ne": r"[\u0900-\u097f]",
    "vi": r"[ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữự]",
}


@dataclass
class Question:
    topic: str | None
    lang: str
    text: str
    anchor: bool


def written_in(lang: str, text: str) -> bool:
    """The language check of the scoring rules."""
    if lang == "ja":
        return re.search(r"[\u3040-\u30ff]", text) is not None
    if lang == "zh":
        han = len(re.findall(r"[\u4e00-\u9fff]", text))
        kana = len(re.findall(r"[\u3040-\u30ff]", text))
        return han > 0 and kana <= han * 0.05
    if lang in SCRIPTS:
        return re.search(SCRIPTS[lang], text, re.IGNORECASE) is not None
    if lang in COMMON_WORDS:
        return len(re.findall(COMMON_WORDS[lang], text, re.IGNORECASE)) >= 2
    return True


def ask_all(questions: list[Question]) -> list[dict]:
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "KIGEN_DATABASE_URL": f"sqlite+aiosqlite:///{folder}/eval.db"}
        lines = "".join(
            json.dumps({"user": f"q{i}", "text": q.text}, ensure_ascii=False) + "\n"
            for i, q in enumerate(questions)
        )
        result = subprocess.run(
            [sys.executable, "-m", "bot", "ask", "--jsonl"],
            input=lines,
            capture_output=True,
            text=True,
            env=env,
            check=True,
            cwd=REPO,
        )
    return [json.loads(line) for line in result.stdout.splitlines()]


def score(
    questions: list[Question], answers: list[dict], topics: dict
) -> list[tuple[Question, bool, str]]:
    def faq_intent(answer: dict) -> str | None:
        return next(
            (r["intent"] for r in answer["replies"] if r["intent"].startswith("faq:")), None
        )

    anchors = {q.topic: faq_intent(a) for q, a in zip(questions, answers, strict=True) if q.anchor}
    results = []
    for question, answer in zip(questions, answers, strict=True):
        intent = faq_intent(answer)
        text = "\n".join(r["text"] for r in answer["replies"])
        if question.topic is None:
            results.append((question, intent is None, intent or ""))
            continue
        rules = topics[question.topic]
        patterns = rules["num"] + (rules["en"] if question.lang == "en" else [])
        why = ""
        if intent is None:
            why = f"no answer ({answer['replies'][0]['intent']})"
        elif not question.anchor and intent != anchors.get(question.topic, f"faq:{question.topic}"):
            why = f"{intent} != anchor {anchors.get(question.topic, f'faq:{question.topic}')}"
        elif missing := [p for p in patterns if not re.search(p, text, re.IGNORECASE)]:
            why = f"{intent} lacks {missing}"
        elif not written_in(question.lang, text):
            why = f"{intent} not written in {question.lang}"
        results.append((question, not why, why))
    return results


def load(path: Path) -> list[Question]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [Question(**json.loads(line)) for line in lines if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="*", type=Path, default=DEFAULT_SETS)
    args = parser.parse_args()
    topics = json.loads(TOPICS.read_text(encoding="utf-8"))
    overall_passed = overall_total = 0
    for path in args.sets:
        questions = [
            Question(**json.loads(line))
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        results = score(questions, ask_all(questions), topics)
        by_lang: dict[str, list[bool]] = defaultdict(list)
        for question, passed, _why in results:
            by_lang[question.lang].append(passed)
        print(f"\n{path.name}: {len(questions)} questions")
        for lang, passes in sorted(by_lang.items()):
            print(f"  {lang:3} {sum(passes) / len(passes):.3f}  ({sum(passes)}/{len(passes)})")
        passed = sum(p for _, p, _ in results)
        print(f"  overall {passed / len(results):.3f}  ({passed}/{len(results)})")
        refused = [p for q, p, _ in results if q.topic is None]
        print(f"  out of scope refused: {sum(refused)}/{len(refused)}")
        for question, ok, why in results:
            if not ok:
                print(f"  FAIL [{question.lang}] {question.topic}: {question.text[:60]!r} -> {why}")
        overall_passed += passed
        overall_total += len(results)
    print(f"\nall sets: {overall_passed / overall_total:.3f} ({overall_passed}/{overall_total})")


if __name__ == "__main__":
    main()
