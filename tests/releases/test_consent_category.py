"""A consent holds only for the category its recipient had when it was signed (issue 12, item
7): a treatment provider later recategorised as a court does not keep receiving under a
consent the person gave to a treatment provider, nor does a court relabelled as anything else.
"""

import pytest
from django.db import DatabaseError, transaction
from django.urls import reverse

from releases import gate
from releases.models import Category, Consent, ConsentRecipientCategory, DisclosureLog, Scope
from releases.services import outgoing as services
from releases.services.consents import consent_record
from releases.services.registry import recipient_recategorise
from tests.helpers import messages_of
from tests.releases.factories import (
    approve_twice,
    make_consent,
    make_person,
    make_recipient,
    make_request,
)
from tests.releases.test_consents import valid_kwargs

pytestmark = pytest.mark.django_db

ATT = [Scope.ATTENDANCE]


@pytest.fixture
def person(site):
    return make_person(site=site, name="Jordan")


@pytest.fixture
def provider(site):
    return make_recipient(
        site=site, category=Category.TREATMENT_PROVIDER, organisation="Eastside Recovery"
    )


def approved_attempt(person, recipient):
    """A release with everything a criminal-legal release needs: a request approved by the
    privacy officer and a second staff member."""
    request = make_request(person=person, recipient=recipient)
    approve_twice(request, site=person.site)
    return gate.release_attempt(
        site=person.site,
        path="packet_generate",
        asked_by=None,
        person=person,
        recipient=recipient,
        purpose="attendance",
        scope=ATT,
        request=request,
    )


def test_a_treatment_provider_consent_does_not_release_to_it_once_it_is_a_court(
    person, provider, privacy_officer
):
    make_consent(person=person, recipients=[provider])
    recipient_recategorise(
        recipient=provider, to_category=Category.COURT, by=privacy_officer, reason="it is a court"
    )
    decision = approved_attempt(person, provider)
    assert (decision.decision, decision.reason) == (gate.REFUSED, "recipient_recategorised")
    row = DisclosureLog.objects.get()
    assert (row.decision, row.reason, row.recipient_category) == (
        "refused",
        "recipient_recategorised",
        Category.COURT,
    )
    assert "category has changed since the consent was signed" in services.reason_text(row.reason)


def test_a_court_consent_does_not_hold_once_the_court_is_relabelled(person, site, privacy_officer):
    court = make_recipient(
        site=site, category=Category.COURT, organisation="County Court", office="Clerk"
    )
    make_consent(person=person, recipients=[court])
    assert approved_attempt(person, court).granted
    recipient_recategorise(
        recipient=court, to_category=Category.PROBATION, by=privacy_officer, reason="mislabelled"
    )
    decision = approved_attempt(person, court)
    assert (decision.decision, decision.reason) == (gate.REFUSED, "recipient_recategorised")


def test_a_consent_signed_after_the_change_holds_for_the_new_category(
    person, provider, privacy_officer
):
    make_consent(person=person, recipients=[provider])
    recipient_recategorise(
        recipient=provider, to_category=Category.COURT, by=privacy_officer, reason="it is a court"
    )
    make_consent(person=person, recipients=[provider])
    decision = approved_attempt(person, provider)
    assert decision.granted


def test_recategorising_between_non_criminal_categories_also_ends_the_consent(
    person, provider, privacy_officer
):
    make_consent(person=person, recipients=[provider])
    assert gate.release_decide(
        person=person, recipient=provider, purpose="attendance", scope=ATT
    ).granted
    recipient_recategorise(
        recipient=provider, to_category=Category.HEALTH_PLAN, by=privacy_officer, reason="plan"
    )
    decision = gate.release_decide(
        person=person, recipient=provider, purpose="attendance", scope=ATT
    )
    assert (decision.decision, decision.reason) == (gate.REFUSED, "recipient_recategorised")


def test_a_consent_with_no_recorded_category_holds_for_nothing(person, provider):
    """Default deny: a consent whose recipient's category at signing is unknown is refused."""
    consent = make_consent(person=person, recipients=[provider], seal=False)
    ConsentRecipientCategory.objects.filter(consent=consent).delete()
    Consent.objects.filter(pk=consent.pk).update(sealed=True)
    decision = gate.release_decide(
        person=person, recipient=provider, purpose="attendance", scope=ATT
    )
    assert (decision.decision, decision.reason) == (gate.REFUSED, "recipient_recategorised")


def test_recording_a_consent_stores_each_recipients_category_at_signing(
    person, site, privacy_officer
):
    clinic_b = make_recipient(site=site, category=Category.TREATMENT_PROVIDER, organisation="B")
    plan = make_recipient(site=site, category=Category.HEALTH_PLAN, organisation="Plan")
    recipient_recategorise(
        recipient=plan, to_category=Category.OTHER, by=privacy_officer, reason="not a plan"
    )
    consent = consent_record(**valid_kwargs(person, site, privacy_officer, [clinic_b, plan]))
    recorded = {r.recipient_id: r.category for r in consent.recipient_categories.all()}
    assert recorded == {clinic_b.pk: Category.TREATMENT_PROVIDER, plan.pk: Category.OTHER}


def test_the_category_at_signing_cannot_be_changed_added_or_removed(person, provider, site):
    consent = make_consent(person=person, recipients=[provider])
    row = ConsentRecipientCategory.objects.get(consent=consent)
    with pytest.raises(DatabaseError), transaction.atomic():
        ConsentRecipientCategory.objects.filter(pk=row.pk).update(category=Category.COURT)
    with pytest.raises(DatabaseError), transaction.atomic():
        ConsentRecipientCategory.objects.filter(pk=row.pk).delete()
    other = make_recipient(site=site, category=Category.COURT, organisation="C", office="D")
    with pytest.raises(DatabaseError), transaction.atomic():
        ConsentRecipientCategory.objects.create(
            consent=consent, recipient=other, category=Category.COURT
        )
    assert list(ConsentRecipientCategory.objects.values_list("category", flat=True)) == [
        Category.TREATMENT_PROVIDER
    ]


def test_the_registry_page_warns_before_and_says_how_many_consents_ended(
    client, person, provider, privacy_officer
):
    make_consent(person=person, recipients=[provider])
    make_consent(person=make_person(site=person.site, name="Sam"), recipients=[provider])
    client.force_login(privacy_officer)
    page = client.get(reverse("releases:recipient", args=[provider.pk]))
    text = page.content.decode()
    assert "A consent holds only for the category the recipient had when it was signed" in text
    assert "2 consents in force name this recipient now." in text
    response = client.post(
        reverse("releases:recipient_recategorise", args=[provider.pk]),
        {"to_category": Category.COURT, "reason": "it is a court"},
    )
    assert response.status_code == 302
    shown = " ".join(messages_of(response))
    assert "2 consents in force named this recipient as Treatment provider" in shown
    assert "no longer allow releases to it" in shown
    after = client.get(reverse("releases:recipient", args=[provider.pk])).content.decode()
    assert "0 consents in force name this recipient now." in after


BEFORE = [("releases", "0006_append_only_both_engines")]


@pytest.mark.django_db(transaction=True)
def test_existing_consents_take_their_recipients_current_category_on_upgrade(consents_flushable):
    """The form never recorded the category: consents signed before the upgrade are given
    each recipient's category as it is at the upgrade (its latest recorded change)."""
    import datetime as dt

    from django.core.management import call_command
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.utils import timezone

    from clinic.db_roles import as_owner
    from tests.factories import PersonFactory, UserFactory

    person = PersonFactory()
    user = UserFactory()
    with as_owner():
        executor = MigrationExecutor(connection)
        executor.migrate(BEFORE)
        try:
            old = executor.loader.project_state(BEFORE).apps
            Recipient = old.get_model("releases", "Recipient")
            Change = old.get_model("releases", "RecipientCategoryChange")
            OldConsent = old.get_model("releases", "Consent")

            def recipient(category, name):
                return Recipient.objects.create(
                    site_id=person.site_id,
                    organisation=name,
                    office="Desk",
                    category=category,
                    created_by_id=user.pk,
                )

            clinic_b = recipient(Category.TREATMENT_PROVIDER, "Clinic B")
            moved = recipient(Category.TREATMENT_PROVIDER, "Was a clinic")
            Change.objects.create(
                recipient=moved,
                from_category=Category.TREATMENT_PROVIDER,
                to_category=Category.COURT,
                by_id=user.pk,
                at=timezone.now(),
                reason="it is a court",
            )
            consent = OldConsent.objects.create(
                person_id=person.pk,
                site_id=person.site_id,
                scope=ATT,
                revocation_statement="Tell us.",
                expires_on=timezone.localdate() + dt.timedelta(days=30),
                signed_by="person",
                signature_image="data:image/png;base64,AA==",
                signed_on=timezone.localdate(),
                recorded_by_id=user.pk,
                recorded_at=timezone.now(),
            )
            consent.recipients.set([clinic_b, moved])
            OldConsent.objects.filter(pk=consent.pk).update(sealed=True)
        finally:
            call_command("migrate", verbosity=0)
    recorded = dict(
        ConsentRecipientCategory.objects.filter(consent_id=consent.pk).values_list(
            "recipient_id", "category"
        )
    )
    assert recorded == {clinic_b.pk: Category.TREATMENT_PROVIDER, moved.pk: Category.COURT}
    # And they are as fixed as any signed consent's.
    with pytest.raises(DatabaseError), transaction.atomic():
        ConsentRecipientCategory.objects.filter(consent_id=consent.pk).update(category="other")


def test_the_consent_page_says_it_no_longer_holds_for_a_recategorised_recipient(
    client, person, provider, privacy_officer
):
    consent = make_consent(person=person, recipients=[provider])
    client.force_login(privacy_officer)
    url = reverse("releases:consent", args=[consent.pk])
    assert 'data-testid="recategorised"' not in client.get(url).content.decode()
    recipient_recategorise(
        recipient=provider, to_category=Category.COURT, by=privacy_officer, reason="it is a court"
    )
    page = client.get(url).content.decode()
    assert (
        "Eastside Recovery was a Treatment provider when this consent was signed; its category "
        "has changed since, so this consent no longer allows releases to it."
    ) in page
