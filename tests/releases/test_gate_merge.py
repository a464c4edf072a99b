"""The consent gate and two records of one person (releases/gate.py, visits.services.merge).

A consent stays with the record it was signed under (it is sealed, and names the person as
they signed it). Once that record is merged into another by an approved merge, the gate counts
it for the kept record, judging it alone as always: never combined with another consent, so
nothing leaves that one consent did not cover. Default deny throughout: before approval, after
a decline, and for the merged record itself, nothing.
"""

import uuid

import pytest

from releases import gate
from releases.errors import ReleaseError
from releases.models import Category, DisclosureLog, Revocation, Scope
from releases.services.consents import consent_hold_place, consent_record
from releases.services.outgoing import packet_generate, release_request_create
from tests.factories import PersonFactory
from tests.releases.factories import make_consent, make_recipient, revoke
from visits.services import merge as merge_services

pytestmark = pytest.mark.django_db

PURPOSE = "care coordination"
ATT = [Scope.ATTENDANCE]


@pytest.fixture
def kept(site):
    return PersonFactory(site=site, name="Sam Rivera")


@pytest.fixture
def duplicate(site):
    return PersonFactory(site=site, name="Sammy")


@pytest.fixture
def provider(site):
    return make_recipient(site=site, category=Category.TREATMENT_PROVIDER)


def propose(site, kept, duplicate, by):
    return merge_services.person_merge_propose(
        site=site, kept=kept, duplicate=duplicate, by=by, reason="Registered twice",
        seen=merge_services.merge_fingerprint(kept, duplicate), nonce=uuid.uuid4(),
    )  # fmt: skip


@pytest.fixture
def merged(site, kept, duplicate, clinician, privacy_officer):
    """Merge the second record into the kept one (call it when the test is ready)."""

    def merge():
        merge_services.person_merge_approve(
            merge=propose(site, kept, duplicate, clinician), by=privacy_officer
        )
        kept.refresh_from_db()
        duplicate.refresh_from_db()

    return merge


def decide(person, recipient, scope=ATT, purpose=PURPOSE, **kw):
    return gate.release_decide(
        person=person, recipient=recipient, purpose=purpose, scope=scope, **kw
    )


def test_a_consent_signed_under_the_merged_record_counts_for_the_kept_one(
    kept, duplicate, provider, merged
):
    consent = make_consent(person=duplicate, recipients=[provider], purposes=(PURPOSE,))
    assert decide(kept, provider).reason == "no_consent"  # two people, as far as anyone knows
    merged()
    decision = decide(kept, provider)
    assert (decision.decision, decision.reason, decision.consent) == (
        gate.GRANTED,
        "consent_valid",
        consent,
    )
    assert decision.scope == (Scope.ATTENDANCE,)
    consent.refresh_from_db()
    assert consent.person == duplicate  # the signed record stays as it was signed


def test_a_proposal_or_a_declined_merge_counts_for_nothing(
    site, kept, duplicate, provider, clinician, privacy_officer
):
    make_consent(person=duplicate, recipients=[provider], purposes=(PURPOSE,))
    merge = propose(site, kept, duplicate, clinician)
    assert decide(kept, provider).reason == "no_consent"
    merge_services.person_merge_decline(merge=merge, by=privacy_officer)
    assert decide(kept, provider).reason == "no_consent"


def test_consents_of_the_two_records_are_never_combined(kept, duplicate, provider, merged):
    make_consent(
        person=duplicate, recipients=[provider], purposes=(PURPOSE,), scope=[Scope.ATTENDANCE]
    )
    make_consent(person=kept, recipients=[provider], purposes=(PURPOSE,), scope=[Scope.TOX])
    merged()
    assert decide(kept, provider, scope=[Scope.ATTENDANCE]).granted
    assert decide(kept, provider, scope=[Scope.TOX]).granted
    both = decide(kept, provider, scope=[Scope.ATTENDANCE, Scope.TOX])
    assert (both.decision, both.reason) == (gate.REFUSED, "scope_not_consented")
    # Nor purpose from one and recipient from the other.
    other = make_recipient(site=kept.site, organisation="Westside Clinic")
    make_consent(person=duplicate, recipients=[other], purposes=("housing",))
    assert decide(kept, other).reason == "purpose_not_consented"


def test_a_revocation_of_the_merged_records_consent_stops_it_for_the_kept_one(
    kept, duplicate, provider, merged
):
    consent = make_consent(person=duplicate, recipients=[provider], purposes=(PURPOSE,))
    merged()
    revoke(consent)
    assert decide(kept, provider).reason == "revoked"


def test_they_take_back_their_consent_on_the_kept_record_holds_the_merged_records_too(
    site, kept, duplicate, provider, merged, front_desk
):
    theirs = make_consent(person=duplicate, recipients=[provider], purposes=(PURPOSE,))
    own = make_consent(person=kept, recipients=[provider], purposes=(PURPOSE,))
    merged()
    held = consent_hold_place(person=kept, site=site, by=front_desk)
    assert {r.consent_id for r in held} == {theirs.pk, own.pk}
    assert {r.how for r in held} == {Revocation.How.ORAL}
    decision = decide(kept, provider)
    assert (decision.decision, decision.reason) == (gate.HELD, "held_oral_revocation")


def test_nothing_is_released_about_the_merged_record_itself(
    site, kept, duplicate, provider, merged, privacy_officer
):
    make_consent(person=duplicate, recipients=[provider], purposes=(PURPOSE,))
    assert decide(duplicate, provider).granted
    merged()
    assert decide(duplicate, provider).reason == "person_merged"
    decision = gate.release_attempt(
        site=site, path="test", asked_by=privacy_officer, person=duplicate, recipient=provider,
        purpose=PURPOSE, scope=ATT,
    )  # fmt: skip
    assert not decision.granted
    row = DisclosureLog.objects.get(path="test")
    assert (row.person, row.decision, row.reason) == (duplicate, "refused", "person_merged")


def test_nothing_new_is_started_on_the_merged_record(
    site, kept, duplicate, provider, merged, clinician, privacy_officer
):
    merged()
    with pytest.raises(ReleaseError) as info:
        release_request_create(
            site=site, person=duplicate, recipient=provider, purpose=PURPOSE, scope=ATT,
            by=clinician,
        )  # fmt: skip
    assert info.value.code == "person_merged"
    with pytest.raises(ReleaseError) as info:
        consent_record(
            person=duplicate, site=site, by=privacy_officer, recipients=[provider],
            purposes=[PURPOSE], scope=ATT, revocation_statement="Tell us",
            expires_on=None, expiry_event="End of treatment", signed_by="person",
            signature_image="data:image/png;base64,iVBORw0KGgo=", signed_on=None,
        )  # fmt: skip
    assert info.value.code == "person_merged"


def test_a_request_made_for_the_merged_record_is_prepared_for_the_kept_one(
    site, kept, duplicate, provider, merged, clinician, privacy_officer
):
    consent = make_consent(person=duplicate, recipients=[provider], purposes=(PURPOSE,))
    request = release_request_create(
        site=site, person=duplicate, recipient=provider, purpose=PURPOSE, scope=ATT,
        by=clinician,
    )  # fmt: skip
    merged()
    request.refresh_from_db()
    assert request.person == kept
    packet = packet_generate(request=request, by=privacy_officer)
    assert packet.consent == consent
    assert packet.manifest["head"]["person_name"] == "Sam Rivera"
    assert sorted(s["scope"] for s in packet.manifest["sections"]) == [Scope.ATTENDANCE]
