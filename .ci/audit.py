"""The advisory check: every lock file against the known vulnerabilities, with pip-audit.

Run by `make audit` (and so by CI) with the tools' own venv, which has pip-audit; the project's
environment never does. pip-audit reads the pinned, hashed lock files as they are (no resolving,
no installing) and asks the advisory service about each package this platform would install.

The verdict (README: Dependencies and the lock files):
- a known vulnerability in any locked package fails (exit 1), naming it and its fixed versions;
- packages the service could not answer for, or a service that could not be reached, are listed
  as NOT CHECKED and pass, unless AUDIT_STRICT=1, where they fail too;
- anything else that stops pip-audit (a lock file it refuses) fails;
- AUDIT_IGNORE="ID ID ..." accepts advisories that have been read and judged not to apply;
- AUDIT_SERVICE=osv asks OSV instead of PyPI (AUDIT_OSV_URL for another OSV endpoint).
"""

import json
import os
import subprocess
import sys
import tempfile


def command(locks: list[str], ignore: list[str], report: str, service: str = "pypi") -> list[str]:
    args = [sys.executable, "-m", "pip_audit", "--disable-pip", "--require-hashes"]
    args += ["--progress-spinner", "off", "--format", "json", "--output", report]
    args += ["--vulnerability-service", service]
    if os.environ.get("AUDIT_OSV_URL"):
        args += ["--osv-url", os.environ["AUDIT_OSV_URL"]]
    for lock in locks:
        args += ["--requirement", lock]
    for advisory in ignore:
        args += ["--ignore-vuln", advisory]
    return args


def verdict(report: dict | None, stderr: str, strict: bool) -> tuple[int, list[str]]:
    """(exit code, lines to print) for pip-audit's JSON report, or None if it wrote none."""
    if report is None:
        problem = (stderr.strip().splitlines() or ["no report"])[-1]
        if "requests.exceptions." not in stderr:
            # Not the network: a lock file pip-audit refuses (a missing hash...) fails.
            return 1, [f"The advisory check failed: {problem}"]
        lines = [f"NOT CHECKED: the advisory service could not be reached ({problem})."]
        return (1 if strict else 0), [*lines, _strict_note(strict)]
    vulnerable = [dep for dep in report.get("dependencies", []) if dep.get("vulns")]
    unchecked = [dep for dep in report.get("dependencies", []) if dep.get("skip_reason")]
    checked = len(report.get("dependencies", [])) - len(unchecked)
    lines = []
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixed = ", ".join(vuln.get("fix_versions") or []) or "no fixed version yet"
            aliases = ", ".join(vuln.get("aliases") or [])
            lines.append(
                f"VULNERABLE: {dep['name']} {dep['version']}: {vuln['id']}"
                + (f" ({aliases})" if aliases else "")
                + f"; fixed in: {fixed}"
            )
    if unchecked:
        names = ", ".join(f"{dep['name']}" for dep in unchecked)
        lines.append(f"NOT CHECKED: {len(unchecked)} package(s) the service did not answer for:")
        lines.append(f"  {names}")
        lines.append(f"  first reason: {unchecked[0]['skip_reason']}")
    lines.append(f"{checked} package(s) checked, {len(vulnerable)} with known vulnerabilities.")
    if vulnerable:
        lines.append("Bump them: `make lock-upgrade PACKAGE=name` (README: Dependencies).")
        return 1, lines
    if unchecked:
        return (1 if strict else 0), [*lines, _strict_note(strict)]
    return 0, lines


def _strict_note(strict: bool) -> str:
    if strict:
        return "AUDIT_STRICT=1: an unchecked package fails the audit."
    return "Passing without a full check; AUDIT_STRICT=1 makes this fail."


def main(locks: list[str]) -> int:
    strict = os.environ.get("AUDIT_STRICT", "") == "1"
    ignore = os.environ.get("AUDIT_IGNORE", "").split()
    service = os.environ.get("AUDIT_SERVICE") or "pypi"
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "report.json")
        result = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
            command(locks, ignore, path, service), capture_output=True, text=True, check=False
        )
        try:
            with open(path) as file:
                report = json.load(file)
        except (OSError, ValueError):
            report = None
    code, lines = verdict(report, result.stderr, strict)
    print("\n".join(lines))
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
