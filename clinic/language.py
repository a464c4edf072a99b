"""The note language check (LANGUAGE.md): it suggests, never blocks and never rewrites.

It reads staff-written text only. What is recorded as the person's own words (a goal "in their
words", their account of what they used, anything a note quotes between quotation marks) is
theirs to say as they like and is never flagged. The clinic's own vocabulary is not flagged
either: "clean" of syringes, wounds or rooms, a "relapse" of hepatitis C (the `~` lines of the
terms file say which words nearby make a term the clinic's own).

A form that saves staff-written text calls `language_message` after saving, once per field;
STAFF_WRITTEN lists those fields and OWN_WORDS the ones that are never checked.
"""

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from django.contrib import messages
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

TERMS_FILE = Path(__file__).resolve().parent / "data" / "language.txt"

# Fields written by staff, checked after each save ("app_label.Model.field"). A new one joins
# this list, and the view that saves it calls `language_message(request, _("label"), text)`
# after saving: one line.
STAFF_WRITTEN = (
    "visits.Visit.note",
    "visits.Addendum.text",
    "visits.GoalProgress.note",
    "visits.ToxScreen.note",
    "visits.ToxScreen.decision",
    "visits.Appointment.note",
    "clinic.Person.what_helps",
    "queue.Arrival.urgent_reason",
    "visits.HandOffNote.text",
)
# The person's own words: never checked.
OWN_WORDS = ("visits.Goal.words", "visits.ToxScreen.own_account")

# How far around a term its context words count, in words, within one clause.
CONTEXT_WORDS = 3
_CLAUSE_END = re.compile(r"[.,;:!?()\[\]\n]")
_WORD = re.compile(r"\w+")
# Quoted speech: what the person said, in their words.
_QUOTED = re.compile(r'"[^"\n]*"|“[^”]*”|«[^»]*»|„[^“”]*[“”]')


@dataclass(frozen=True)
class Finding:
    term: str  # as written in the note
    suggestion: str
    start: int
    end: int


@dataclass(frozen=True)
class _Rule:
    pattern: re.Pattern
    suggestion: str
    term: str  # casefolded, to find its context words


def _terms(text: str) -> list[str]:
    # "user, users (of drugs)": the parenthesis says when it applies, it is not matched.
    return [t.strip() for t in re.sub(r"\([^)]*\)", "", text).split(",") if t.strip()]


def _matches(word: str, wanted: str) -> bool:
    # An acronym ("MS", "TB") counts only in capitals, as the terms do.
    return word == wanted if wanted.isupper() else word.casefold() == wanted.casefold()


@functools.cache
def _rules() -> tuple[tuple[_Rule, ...], dict[str, tuple[str, ...]]]:
    rules, contexts = [], {}
    for line in TERMS_FILE.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if "~" in line and "→" not in line:
            terms, words = line.split("~", 1)
            for term in _terms(terms):
                contexts[term.casefold()] = contexts.get(term.casefold(), ()) + tuple(_terms(words))
            continue
        if "→" not in line:
            continue
        terms, suggestion = (part.strip() for part in line.split("→", 1))
        for term in _terms(terms):
            words = r"[\s-]+".join(re.escape(w) for w in re.split(r"[\s-]+", term))
            # An acronym ("MAT") matches only in capitals, so a floor mat is left alone.
            flags = 0 if term.isupper() else re.IGNORECASE
            pattern = re.compile(rf"(?<![\w-]){words}(?![\w-])", flags)
            rules.append(_Rule(pattern, suggestion, term.casefold()))
    # Longer phrases first, so "drug abuser" wins over "abuser".
    rules.sort(key=lambda rule: -len(rule.pattern.pattern))
    return tuple(rules), contexts


def _nearby(text: str, start: int, end: int) -> list[str]:
    """The words within CONTEXT_WORDS of text[start:end], on both sides, in its clause."""
    before = _CLAUSE_END.split(text[:start])[-1]
    after = _CLAUSE_END.split(text[end:])[0]
    return _WORD.findall(before)[-CONTEXT_WORDS:] + _WORD.findall(after)[:CONTEXT_WORDS]


def _clinic_vocabulary(rule: _Rule, text: str, start: int, end: int) -> bool:
    context = _rules()[1].get(rule.term, ())
    return any(_matches(w, c) for w in _nearby(text, start, end) for c in context)


def language_check(text: str) -> list[Finding]:
    """Stigmatising words in staff-written `text`, each with the suggested wording, in order of
    appearance. Quoted speech and the clinic's own vocabulary are left alone."""
    text = text or ""
    taken = [m.span() for m in _QUOTED.finditer(text)]
    findings: list[Finding] = []
    for rule in _rules()[0]:
        for match in rule.pattern.finditer(text):
            start, end = match.span()
            if any(start < e and s < end for s, e in taken):
                continue
            if _clinic_vocabulary(rule, text, start, end):
                continue
            taken.append((start, end))
            findings.append(Finding(match.group(0), rule.suggestion, start, end))
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


def language_message(request, label: str, text: str) -> None:
    """After saving a staff-written field: the words the language check found, with
    suggestions, as a message on the next page. Never blocks."""
    findings = language_check(text)
    if not findings:
        return
    suggestions = format_html_join(
        "; ",
        "“{}” → {}",
        ((f.term, _("consider: %(s)s") % {"s": f.suggestion}) for f in findings),
    )
    messages.warning(
        request,
        format_html(
            '{} <span class="checked-text">{}</span> <span class="suggestions">{}</span>',
            _("Saved as written. Language check (%(label)s):") % {"label": label},
            highlight(text),
            suggestions,
        ),
    )
