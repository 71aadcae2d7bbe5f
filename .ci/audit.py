"""Audit the installed dependencies for known vulnerabilities (pip-audit, PyPI's
vulnerability data). Fails on a vulnerability that has a fixed release; reports the
others. When the vulnerability service cannot be reached it says so and does not fail."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

frozen = subprocess.run(
    [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
    capture_output=True,
    text=True,
    check=True,
).stdout
with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as requirements:
    requirements.write(frozen)
result = subprocess.run(
    [
        sys.executable,
        "-m",
        "pip_audit",
        "-r",
        requirements.name,
        "--no-deps",
        "--disable-pip",
        "--format",
        "json",
        "--progress-spinner",
        "off",
    ],
    capture_output=True,
    text=True,
    timeout=300,
)
try:
    report = json.loads(result.stdout)
except json.JSONDecodeError:
    reason = result.stderr.strip()[-200:]
    print(f"dependency audit: could not query the vulnerability service ({reason})")
    sys.exit(0)
fixable, unfixed = [], []
for dependency in report.get("dependencies", []):
    for vulnerability in dependency.get("vulns", []):
        line = f"{dependency['name']} {dependency['version']}: {vulnerability['id']}"
        if vulnerability.get("fix_versions"):
            fixable.append(f"{line} (fixed in {', '.join(vulnerability['fix_versions'])})")
        else:
            unfixed.append(line)
checked = len(report.get("dependencies", []))
for line in unfixed:
    print(f"dependency audit: known, no fix yet: {line}")
if fixable:
    print("dependency audit: vulnerabilities with a fix available:\n  " + "\n  ".join(fixable))
    sys.exit(1)
print(f"dependency audit: {checked} packages, no known vulnerability with a fix available")
