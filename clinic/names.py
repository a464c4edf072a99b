"""The one rule for a person's name, wherever a person is named (check-in, a person's details,
staff accounts, a consent's representative, a recipient's named person, emergency personnel).

A name is kept as typed, except for what nobody can see: it is put in Unicode's composed form
(NFC, so "é" typed two ways is one name), control and invisible format characters are dropped
(zero-width spaces, direction marks and overrides, the byte-order mark, soft hyphens), runs of
white space become one space, and nothing invisible is left at either end. The two joiners that
Persian, Arabic and Indic names need (ZWNJ U+200C and ZWJ U+200D) are kept between two visible
characters. What is left must contain at least one letter (any script's): a name of only
spaces, marks, digits or punctuation is refused.
"""

import unicodedata

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

JOINERS = frozenset("\u200c\u200d")
NO_LETTER = _("Please enter a name with at least one letter.")


def person_name_clean(value: str | None) -> str:
    """The name with its invisible parts tidied as the module says (never raises)."""
    text = unicodedata.normalize("NFC", value or "")
    kept: list[str] = []
    for char in text:
        category = unicodedata.category(char)
        if char.isspace() or category in ("Zs", "Zl", "Zp", "Cc"):
            if kept and kept[-1] != " ":
                kept.append(" ")
        elif category in ("Cf", "Cs") and char not in JOINERS:
            continue
        else:
            kept.append(char)
    # A joiner only joins two visible characters (a mark counts: it belongs to its letter).
    result: list[str] = []
    for i, char in enumerate(kept):
        if char in JOINERS:
            before = result[-1] if result else " "
            after = kept[i + 1] if i + 1 < len(kept) else " "
            if before in (" ", *JOINERS) or after in (" ", *JOINERS):
                continue
        elif char == " " and result and result[-1] == " ":
            continue  # the dropped joiner sat between two spaces
        result.append(char)
    name = "".join(result).strip(" ")
    # A combining mark at the very start has no letter to sit on.
    while name and unicodedata.category(name[0]).startswith("M"):
        name = name[1:].lstrip(" ")
    return name


def has_letter(name: str) -> bool:
    return any(unicodedata.category(char).startswith("L") for char in name)


def validate_person_name(value: str) -> None:
    """For a name already cleaned: empty passes (whether one is required is the field's say)."""
    if value and not has_letter(value):
        raise ValidationError(NO_LETTER, code="name_no_letter")


class PersonNameField(forms.CharField):
    """A name field: cleaned and checked as above. An invisible-only name counts as empty, so a
    required field says "required" and an optional one keeps nothing."""

    default_validators = [validate_person_name]

    def to_python(self, value):
        return person_name_clean(super().to_python(value))
