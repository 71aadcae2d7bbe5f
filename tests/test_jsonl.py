"""The JSON-lines channel, end to end through a real ``kigen ask --jsonl`` process."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bot.jsonl import RequestError, parse_request


def run_kigen(lines: list[str], database_url: str, *extra: str) -> list[dict]:
    env = {**os.environ, "KIGEN_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--jsonl", *extra],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_a_scripted_journey_in_order(database_url):
    lines = [
        {"user": "u1", "event": "follow", "lang": "ja-JP"},
        {"user": "u1", "choice": "lang:en"},
        {"user": "u1", "text": "/remind"},
        {"user": "u1", "choice": "kind:my_number_card"},
        {"user": "u1", "choice": "consent:yes"},
        {"user": "u1", "date": "2027-06-30"},
        {"user": "u1", "choice": "confirm:yes"},
        {"user": "u1", "text": "/list"},
    ]
    out = run_kigen(
        [json.dumps(line) for line in lines], database_url, "--now", "2027-01-01T09:00:00+09:00"
    )
    assert len(out) == len(lines)
    assert all(item["user"] == "u1" for item in out)
    first_intents = [item["replies"][0]["intent"] for item in out]
    assert first_intents == [
        "onboarding:language",
        "language:set",
        "reminder:kind",
        "consent:ask",
        "reminder:ask_date",
        "reminder:confirm",
        "reminder:saved",
        "reminder:list",
    ]
    assert out[4]["replies"][0]["date_request"] is True
    assert "June 30, 2027" in out[7]["replies"][0]["text"]
    assert set(out[0]["replies"][0]) == {"text", "choices", "date_request", "intent", "language"}
    assert out[1]["replies"][0]["language"] == "en"


def test_the_clock_decides_what_is_in_the_past(database_url):
    lines = [
        json.dumps(x)
        for x in (
            {"user": "u1", "text": "/remind"},
            {"user": "u1", "choice": "kind:residence_card"},
            {"user": "u1", "choice": "consent:yes"},
            {"user": "u1", "text": "2027-06-30"},
        )
    ]
    later = run_kigen(lines, database_url, "--now", "2027-07-01T09:00:00+09:00")
    assert later[3]["replies"][0]["intent"] == "error:date"


def test_a_malformed_line_gets_an_error_and_the_run_goes_on(database_url):
    lines = [
        "this is not json",
        json.dumps([1, 2]),
        json.dumps({"text": "no user"}),
        json.dumps({"user": "u1", "date": "15/03/2027"}),
        json.dumps({"user": "u1", "text": "hi", "choice": "x"}),
        json.dumps({"user": "u1", "text": "Do I have to carry my residence card?"}),
    ]
    out = run_kigen(lines, database_url)
    assert [item.get("line") for item in out[:5]] == [1, 2, 3, 4, 5]
    assert all("error" in item for item in out[:5])
    assert out[5]["replies"][0]["intent"] == "faq:carry_card"
    assert out[5]["lang"] == "en"


def test_a_bad_now_is_refused(database_url):
    env = {**os.environ, "KIGEN_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "--jsonl", "--now", "tomorrow"],
        input="",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2
    assert "ISO date-time" in result.stderr


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"user": true, "text": "x"}', "'user'"),
        ('{"user": "u", "event": "poke"}', "'event'"),
        ('{"user": "u", "text": 5}', "'text' must be a string"),
        ('{"user": "u", "lang": 3, "text": "x"}', "'lang'"),
    ],
)
def test_request_validation(line, message):
    with pytest.raises(RequestError, match=message):
        parse_request(line)
