"""A signed consent is never edited after signing: the database refuses it on both engines."""

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from releases.gate import release_decide
from releases.models import Consent, ConsentPurpose, Scope
from releases.services.consents import consent_record
from tests.releases.factories import make_consent, make_person, make_recipient
from tests.releases.test_consents import signature

SIGNATURE_PNG = signature()


@pytest.fixture
def consent(site, clinician):
    person = make_person(site=site)
    recipient = make_recipient(site=site, category="treatment_provider")
    return make_consent(person=person, recipients=[recipient], scope=(Scope.ATTENDANCE,))


def test_widening_a_signed_consents_scope_through_the_orm_is_refused(consent):
    consent.scope = [Scope.ATTENDANCE, Scope.TOX]
    with pytest.raises(IntegrityError), transaction.atomic():
        consent.save()
    assert Consent.objects.get(pk=consent.pk).scope == [Scope.ATTENDANCE]


def test_moving_a_consents_expiry_with_a_queryset_update_is_refused(consent):
    before = consent.expires_on
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.filter(pk=consent.pk).update(expires_on=None, expiry_event="never")
    assert Consent.objects.get(pk=consent.pk).expires_on == before


def test_rewording_a_consents_purpose_is_refused(consent):
    purpose = ConsentPurpose.objects.get(consent=consent)
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentPurpose.objects.filter(pk=purpose.pk).update(text="any purpose")
    assert ConsentPurpose.objects.get(pk=purpose.pk).text == purpose.text


def test_raw_sql_cannot_edit_a_consent_either(consent):
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE releases_consent SET scope = %s WHERE id = %s", ['["tox"]', consent.pk]
        )
    assert Consent.objects.get(pk=consent.pk).scope == [Scope.ATTENDANCE]


# --- recipients and purposes are fixed too (migration 0005) -----------------------------------
# These run in both passes of the suite (SQLite and PostgreSQL); the raw-SQL ones are also
# marked per engine so each engine's own triggers are named in the report.


@pytest.fixture
def bundled(site):
    """A consent naming a treatment provider and a court together: valid for neither."""
    person = make_person(site=site)
    provider = make_recipient(site=site, category="treatment_provider", organisation="Clinic")
    court = make_recipient(site=site, category="court", organisation="Court", office="Dept 3")
    consent = make_consent(person=person, recipients=[provider, court])
    return consent, provider, court


def test_adding_a_recipient_to_a_signed_consent_is_refused(consent, site):
    court = make_recipient(site=site, category="court", organisation="Court", office="Dept 3")
    with pytest.raises(IntegrityError), transaction.atomic():
        consent.recipients.add(court)
    assert list(consent.recipients.all()) != [court]
    assert court not in Consent.objects.get(pk=consent.pk).recipients.all()


def test_removing_a_recipient_from_a_signed_consent_is_refused(bundled):
    # Dropping the provider would turn an invalid bundled consent into a valid court consent.
    consent, provider, court = bundled
    with pytest.raises(IntegrityError), transaction.atomic():
        consent.recipients.remove(provider)
    assert set(Consent.objects.get(pk=consent.pk).recipients.all()) == {provider, court}
    decision = release_decide(
        person=consent.person, recipient=court, purpose="attendance", scope=[Scope.ATTENDANCE]
    )
    assert decision.reason == "approvals_required"  # still criminal-legal, still not valid


def test_replacing_a_signed_consents_recipients_is_refused(consent, site):
    other = make_recipient(site=site, category="treatment_provider", organisation="Other")
    with pytest.raises(IntegrityError), transaction.atomic():
        consent.recipients.set([other])
    assert list(Consent.objects.get(pk=consent.pk).recipients.all()) != [other]


def test_adding_a_purpose_to_a_signed_consent_is_refused(consent):
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentPurpose.objects.create(consent=consent, text="court compliance")
    assert [p.text for p in consent.purposes.all()] == ["attendance"]


def test_deleting_a_signed_consents_purpose_is_refused(consent):
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentPurpose.objects.filter(consent=consent).delete()
    assert consent.purposes.count() == 1


def test_a_signed_consent_cannot_be_unsealed(consent):
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.filter(pk=consent.pk).update(sealed=False)
    assert Consent.objects.get(pk=consent.pk).sealed


def test_sealing_is_the_only_change_and_only_once(site):
    person = make_person(site=site)
    recipient = make_recipient(site=site, category="treatment_provider")
    consent = make_consent(person=person, recipients=[recipient], seal=False)
    # Sealing cannot smuggle another change in.
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.filter(pk=consent.pk).update(sealed=True, scope=["tox"])
    Consent.objects.filter(pk=consent.pk).update(sealed=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        Consent.objects.filter(pk=consent.pk).update(sealed=True)


def test_the_gate_ignores_an_unsealed_consent(site):
    person = make_person(site=site)
    recipient = make_recipient(site=site, category="treatment_provider")
    make_consent(person=person, recipients=[recipient], seal=False)
    decision = release_decide(
        person=person, recipient=recipient, purpose="attendance", scope=[Scope.ATTENDANCE]
    )
    assert decision.reason == "no_consent"


def test_consent_record_seals_the_consent_with_its_recipients_and_purposes(site, privacy_officer):
    person = make_person(site=site)
    recipient = make_recipient(site=site, category="treatment_provider")
    consent = consent_record(
        person=person,
        site=site,
        by=privacy_officer,
        recipients=[recipient],
        purposes=["care"],
        scope=[Scope.ATTENDANCE],
        revocation_statement="Tell us.",
        expiry_event="Referral ends",
        signed_by="person",
        signature_image=SIGNATURE_PNG,
        signed_on=timezone.localdate(timezone.now(), site.tz),
    )
    consent.refresh_from_db()
    assert consent.sealed
    assert list(consent.recipients.all()) == [recipient]
    with pytest.raises(IntegrityError), transaction.atomic():
        ConsentPurpose.objects.create(consent=consent, text="another")


RAW_CHANGES = [
    ("INSERT INTO releases_consent_recipients (consent_id, recipient_id) VALUES (%s, %s)", "add"),
    ("DELETE FROM releases_consent_recipients WHERE consent_id = %s", "remove"),
    ("UPDATE releases_consent_recipients SET recipient_id = %s WHERE consent_id = %s", "swap"),
    ("INSERT INTO releases_consentpurpose (consent_id, text) VALUES (%s, 'any purpose')", "p+"),
    ("DELETE FROM releases_consentpurpose WHERE consent_id = %s", "p-"),
]


def _raw_change_refused(consent, site, sql, kind):
    court = make_recipient(site=site, category="court", organisation="Court", office="Dept 3")
    params = {
        "add": [consent.pk, court.pk],
        "remove": [consent.pk],
        "swap": [court.pk, consent.pk],
        "p+": [consent.pk],
        "p-": [consent.pk],
    }[kind]
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
    assert [r.pk for r in consent.recipients.all()] != [court.pk]
    assert [p.text for p in consent.purposes.all()] == ["attendance"]


@pytest.mark.sqlite
@pytest.mark.parametrize(("sql", "kind"), RAW_CHANGES, ids=[k for _, k in RAW_CHANGES])
def test_sqlite_triggers_refuse_raw_sql_on_a_signed_consents_children(consent, site, sql, kind):
    _raw_change_refused(consent, site, sql, kind)


@pytest.mark.postgres
@pytest.mark.parametrize(("sql", "kind"), RAW_CHANGES, ids=[k for _, k in RAW_CHANGES])
def test_postgres_triggers_refuse_raw_sql_on_a_signed_consents_children(consent, site, sql, kind):
    _raw_change_refused(consent, site, sql, kind)


@pytest.mark.postgres
def test_postgres_refuses_deleting_a_signed_consent(consent):
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM releases_consent WHERE id = %s", [consent.pk])
    assert Consent.objects.filter(pk=consent.pk).exists()
