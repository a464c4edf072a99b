"""A signed consent is never edited after signing: the database refuses it on both engines."""

import pytest
from django.db import IntegrityError, connection, transaction

from releases.models import Consent, ConsentPurpose, Scope
from tests.releases.factories import make_consent, make_person, make_recipient


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
