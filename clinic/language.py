"""The note language check (LANGUAGE.md): it suggests, never blocks and never rewrites."""

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

TERMS_FILE = Path(__file__).resolve().parent / "data" / "language.txt"


@dataclass(frozen=True)
class Finding:
    term: str  # as written in the note
    suggestion: str
    start: int
    end: int


@functools.cache
def _rules() -> tuple[tuple[re.Pattern, str], ...]:
    rules = []
    for line in TERMS_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#") or "→" not in line:
            continue
        terms, suggestion = (part.strip() for part in line.split("→", 1))
        # "user, users (of drugs)": the parenthesis says when it applies, it is not matched.
        terms = re.sub(r"\([^)]*\)", "", terms)
        for term in (t.strip() for t in terms.split(",")):
            if term:
                words = r"[\s-]+".join(re.escape(w) for w in re.split(r"[\s-]+", term))
                # An acronym ("MAT") matches only in capitals, so a floor mat is left alone.
                flags = 0 if term.isupper() else re.IGNORECASE
                rules.append((re.compile(rf"(?<![\w-]){words}(?![\w-])", flags), suggestion))
    # Longer phrases first, so "drug abuser" wins over "abuser".
    rules.sort(key=lambda rule: -len(rule[0].pattern))
    return tuple(rules)


def language_check(text: str) -> list[Finding]:
    """Stigmatising words in `text`, each with the suggested wording, in order of appearance."""
    findings: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for pattern, suggestion in _rules():
        for match in pattern.finditer(text or ""):
            if any(match.start() < end and start < match.end() for start, end in taken):
                continue
            taken.append((match.start(), match.end()))
            findings.append(Finding(match.group(0), suggestion, match.start(), match.end()))
    return sorted(findings, key=lambda f: f.start)


def highlight(text: str) -> SafeString:
    """`text` escaped, with each finding wrapped in <mark> carrying its suggestion."""
    parts, position = [], 0
    for finding in language_check(text):
        parts.append(escape(text[position : finding.start]))
        parts.append(
            f'<mark class="language" title="{escape("Consider: " + finding.suggestion)}">'
            f"{escape(finding.term)}</mark>"
        )
        position = finding.end
    parts.append(escape((text or "")[position:]))
    return mark_safe("".join(parts))  # noqa: S308 - every piece above is escaped
