"""Hostile input through every form of the merge pages (the search, the proposal's reason, the
decline's reason): NUL, zero-width and right-to-left marks, 10,000 characters, and whatever
else Hypothesis makes. Never a server error (a NUL is refused with a clear page); what is
refused is said on the form; what is kept is kept exactly as typed."""

import uuid

import pytest
from django.db import transaction
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clinic.models import PersonMerge
from tests.factories import PersonFactory
from visits.services.merge import merge_fingerprint

HOSTILE = [
    "\x00",
    "Sam\x00my",
    "\u200b",
    "Sam\u200bmy",
    "\u202eymmaS",
    "\u200f\u200e",
    "x" * 10_000,
    "   ",
    "<script>alert(1)</script>",
    "'; DROP TABLE clinic_person; --",
    "%(name)s {{ name }}",
    "😀" * 300,
]
texts = st.sampled_from(HOSTILE) | st.text(max_size=1200)

PROFILE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def pair(site):
    return PersonFactory(site=site, name="Sam Rivera"), PersonFactory(site=site, name="Sammy")


@pytest.mark.django_db
def test_hostile_text_in_the_merge_forms_never_breaks_a_page(
    client, site, pair, clinician, privacy_officer
):
    kept, duplicate = pair
    find = reverse("visits:merge_find", args=[kept.pk])
    propose = reverse("visits:merge_propose", args=[kept.pk, duplicate.pk])

    @PROFILE
    @given(search=texts, reason=texts, why_not=texts)
    def example(search, reason, why_not):
        with transaction.atomic():
            client.force_login(clinician)
            found = client.post(find, {"q": search})
            # A NUL is refused before any view (clinic/bad_input.py), with nothing written.
            assert found.status_code == (400 if "\x00" in search else 200)
            response = client.post(
                propose,
                {
                    "nonce": uuid.uuid4(),
                    "seen": merge_fingerprint(kept, duplicate),
                    "reason": reason,
                },
            )
            merge = PersonMerge.objects.first()
            if response.status_code == 302:
                assert merge is not None and merge.reason == reason.strip()
                client.force_login(privacy_officer)
                declined = client.post(
                    reverse("visits:merge_decline", args=[merge.pk]), {"reason": why_not}
                )
                assert declined.status_code == (400 if "\x00" in why_not else 302)
                merge.refresh_from_db()
                assert merge.status in ("proposed", "declined")
                if merge.status == "declined":
                    assert merge.decline_reason == why_not.strip()
                assert client.get(reverse("visits:merge", args=[merge.pk])).status_code == 200
            elif "\x00" in reason:
                assert response.status_code == 400
                assert merge is None
            else:
                assert response.status_code == 200
                assert response.context["form"].errors
                assert merge is None
            transaction.set_rollback(True)

    example()
