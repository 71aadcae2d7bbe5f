"""The house rules of DESIGN.md that code can check."""

from __future__ import annotations

import ast
import subprocess
import sys

from core.config import REPO_ROOT

FORBIDDEN_IN_CORE = {"telegram", "linebot", "fastapi", "starlette", "apscheduler", "uvicorn", "bot"}


def imported_modules(path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_imports_no_platform_sdk_and_not_bot():
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(imported_modules(path) & FORBIDDEN_IN_CORE)
        for path in (REPO_ROOT / "core").rglob("*.py")
        if imported_modules(path) & FORBIDDEN_IN_CORE
    }
    assert offenders == {}


def test_the_terminal_chat_imports_no_platform_sdk():
    code = (
        "import sys, bot.cli, bot.console, bot.jsonl, core.app;"
        "print(sorted(m for m in ('telegram', 'linebot', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
