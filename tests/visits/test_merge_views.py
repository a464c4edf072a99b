"""The pages for two records of one person: who may do what (everyone else 403, another site's
records and merges 404), POST with CSRF, ids only in URLs, the access log of both readings,
and what the records' pages, filters and lists show afterwards.

Personas (conftest): anonymous, front_desk, clinician, director, privacy_officer and
other_site_clinician; a privacy officer of another site is made here.
"""

import uuid

import pytest
from django.test import Client
from django.urls import reverse

from clinic import roles
from clinic.models import AccessLog, PersonMerge
from tests.factories import make_staff
from tests.helpers import assert_login_redirect, messages_of
from tests.visits.merging import propose, two_records
from visits.services import merge as services

PERSONAS = ["anonymous", "front_desk", "clinician", "director", "privacy_officer"]


@pytest.fixture
def records(site, front_desk, clinician, privacy_officer):
    return two_records(
        site=site, front_desk=front_desk, clinician=clinician, privacy_officer=privacy_officer
    )


@pytest.fixture
def other_site_officer(other_site):
    return make_staff(site=other_site, roles=[roles.PRIVACY_OFFICER], username="pat")


def urls(records, merge=None) -> dict:
    kept, duplicate = records.kept.pk, records.duplicate.pk
    named = {
        "find": reverse("visits:merge_find", args=[kept]),
        "propose": reverse("visits:merge_propose", args=[kept, duplicate]),
        "list": reverse("visits:merges"),
    }
    if merge is not None:
        named |= {
            "detail": reverse("visits:merge", args=[merge.pk]),
            "approve": reverse("visits:merge_approve", args=[merge.pk]),
            "decline": reverse("visits:merge_decline", args=[merge.pk]),
        }
    return named


def propose_form(client, records, **data):
    page = client.get(urls(records)["propose"])
    form = page.context["form"]
    fields = {"nonce": form.initial["nonce"], "seen": form.initial["seen"]}
    fields |= {"reason": "Same birthday and the same dog.", "append_what_helps": "on"}
    return client.post(urls(records)["propose"], {**fields, **data})


# --- who may do what ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "find", "detail", "decide"),
    [
        ("anonymous", 302, 302, 302),
        ("front_desk", 403, 403, 403),
        ("clinician", 200, 200, 403),
        ("director", 403, 403, 403),
        ("privacy_officer", 403, 200, 302),
    ],
)
def test_clinicians_propose_and_the_privacy_officer_decides(
    client, login, records, second_clinician, persona, find, detail, decide
):
    merge = propose(records, by=second_clinician)
    named = urls(records, merge)
    login(persona)
    responses = {
        "find": client.get(named["find"]),
        "propose": client.get(named["propose"]),
        "list": client.get(named["list"]),
        "detail": client.get(named["detail"]),
        "decline": client.post(named["decline"], {"reason": ""}),
    }
    if persona == "anonymous":
        for response in responses.values():
            assert_login_redirect(response)
        return
    assert responses["find"].status_code == find
    assert responses["propose"].status_code == find
    assert responses["list"].status_code == detail
    assert responses["detail"].status_code == detail
    assert responses["decline"].status_code == decide
    merge.refresh_from_db()
    assert merge.status == ("declined" if persona == "privacy_officer" else "proposed")


def test_another_sites_staff_find_neither_the_records_nor_the_merge(
    client, records, second_clinician, other_site_clinician, other_site_officer
):
    merge = propose(records, by=second_clinician)
    named = urls(records, merge)
    client.force_login(other_site_clinician)
    for name in ("find", "propose", "detail"):
        assert client.get(named[name]).status_code == 404, name
    assert merge.pk not in [m.pk for m in client.get(named["list"]).context["waiting"]]
    client.force_login(other_site_officer)
    assert client.post(named["approve"]).status_code == 404
    assert client.post(named["decline"]).status_code == 404
    merge.refresh_from_db()
    assert merge.status == "proposed"


def test_deciding_is_post_only_with_csrf(records, second_clinician, privacy_officer):
    merge = propose(records, by=second_clinician)
    named = urls(records, merge)
    client = Client(enforce_csrf_checks=True)
    client.force_login(privacy_officer)
    assert client.get(named["approve"]).status_code == 405
    assert client.get(named["decline"]).status_code == 405
    assert client.post(named["approve"]).status_code == 403  # no CSRF token
    merge.refresh_from_db()
    assert merge.status == "proposed"


def test_the_proposer_cannot_approve_even_as_privacy_officer(client, records, site):
    both = make_staff(site=site, roles=[roles.CLINICIAN, roles.PRIVACY_OFFICER], username="bo")
    merge = propose(records, by=both)
    client.force_login(both)
    page = client.get(urls(records, merge)["detail"])
    assert page.context["may_decide"] is False
    assert "Approve and merge" not in page.content.decode()
    response = client.post(urls(records, merge)["approve"], follow=True)
    assert "You proposed this merge" in " ".join(messages_of(response))
    merge.refresh_from_db()
    assert merge.status == "proposed"


# --- the flow through the pages ---------------------------------------------------------------


def test_a_clinician_finds_compares_and_proposes_and_the_officer_approves(
    client, records, clinician, privacy_officer
):
    kept, duplicate = records.kept, records.duplicate
    client.force_login(clinician)
    person_page = client.get(reverse("visits:person", args=[kept.pk])).content.decode()
    assert urls(records)["find"] in person_page

    # The search is a POST: the name is in the body, never the URL.
    found = client.post(urls(records)["find"], {"q": "Sam"})
    assert [p.pk for p in found.context["found"]] == [duplicate.pk]
    assert urls(records)["propose"] in found.content.decode()

    page = client.get(urls(records)["propose"])
    comparison = page.context["comparison"]
    assert comparison.problem == ""
    assert len(comparison.duplicate.visits) == 2
    html = page.content.decode()
    for words in ("Sam Rivera", "Sammy", "Has a dog called Pepper", "555-0147"):
        assert words in html
    logged = AccessLog.objects.filter(user=clinician, what=AccessLog.What.MERGE)
    assert sorted(logged.values_list("person_id", flat=True)) == sorted([kept.pk, duplicate.pk])

    response = propose_form(client, records, take_phone="duplicate")
    merge = PersonMerge.objects.get()
    assert response.status_code == 302
    assert response.url == urls(records, merge)["detail"]
    assert (merge.take_from_duplicate, merge.append_what_helps) == (["phone"], True)
    # The person page says a merge is waiting.
    page = client.get(reverse("visits:person", args=[kept.pk]))
    assert page.context["merge_waiting"] == merge

    client.force_login(privacy_officer)
    detail = client.get(urls(records, merge)["detail"])
    assert detail.context["may_decide"] is True
    after = {row.field: row.after for row in detail.context["proposal"].rows}
    assert after["phone"] == "555-0147"
    assert after["what_helps"] == "Likes the quiet room\nHas a dog called Pepper"
    officer_logged = AccessLog.objects.filter(user=privacy_officer, what=AccessLog.What.MERGE)
    assert sorted(officer_logged.values_list("person_id", flat=True)) == sorted(
        [kept.pk, duplicate.pk]
    )
    assert set(officer_logged.values_list("object_id", flat=True)) == {str(merge.pk)}

    response = client.post(urls(records, merge)["approve"])
    assert response.status_code == 302
    assert response.url == reverse("visits:person", args=[kept.pk])
    merge.refresh_from_db()
    assert (merge.status, merge.decided_by) == ("approved", privacy_officer)
    # A second tap is harmless: the same place, nothing else changes.
    again = client.post(urls(records, merge)["approve"])
    assert again.url == reverse("visits:person", args=[kept.pk])


def test_a_double_tap_on_propose_makes_one_proposal(client, records, clinician):
    client.force_login(clinician)
    page = client.get(urls(records)["propose"])
    data = {
        "nonce": page.context["form"].initial["nonce"],
        "seen": page.context["form"].initial["seen"],
        "reason": "Same person.",
    }
    first = client.post(urls(records)["propose"], data)
    second = client.post(urls(records)["propose"], data)
    assert first.url == second.url
    assert PersonMerge.objects.count() == 1


def test_a_person_in_line_is_shown_and_not_offered(client, records, clinician, front_desk, site):
    from tests.factories import check_in

    arrival = check_in(site=site, by=front_desk, person=records.duplicate)
    client.force_login(clinician)
    page = client.get(urls(records)["propose"])
    assert arrival.ticket in page.context["comparison"].problem
    assert "Ask the privacy officer to approve" not in page.content.decode()
    response = propose_form(client, records)
    assert response.status_code == 200
    assert arrival.ticket in str(response.context["form"].non_field_errors())
    assert not PersonMerge.objects.exists()


def test_a_page_opened_before_a_change_cannot_propose(client, records, clinician, front_desk):
    client.force_login(clinician)
    page = client.get(urls(records)["propose"])
    form = page.context["form"]
    client.force_login(front_desk)
    client.post(
        reverse("visits:person_edit", args=[records.kept.pk]), {"name": "Sam R.", "phone": ""}
    )
    client.force_login(clinician)
    response = client.post(
        urls(records)["propose"],
        {"nonce": form.initial["nonce"], "seen": form.initial["seen"], "reason": "Same."},
    )
    assert response.status_code == 200
    assert "changed since this page was opened" in str(response.context["form"].non_field_errors())


def test_every_problem_with_the_form_shows_at_once(client, records, clinician, site):
    from clinic.models import Person

    Person.objects.filter(pk=records.kept.pk).update(what_helps="x" * 990)
    client.force_login(clinician)
    response = propose_form(client, records, reason="", take_name="neither")
    form = response.context["form"]
    assert set(form.errors) == {"reason", "take_name", "append_what_helps"}
    assert not PersonMerge.objects.exists()


def test_declining_leaves_both_records_and_says_why(
    client, records, second_clinician, privacy_officer
):
    merge = propose(records, by=second_clinician)
    client.force_login(privacy_officer)
    client.post(urls(records, merge)["decline"], {"reason": "Two siblings"})
    merge.refresh_from_db()
    assert (merge.status, merge.decline_reason) == ("declined", "Two siblings")
    page = client.get(urls(records, merge)["detail"]).content.decode()
    assert "Two siblings" in page
    records.duplicate.refresh_from_db()
    assert records.duplicate.merged_into is None


# --- afterwards ----------------------------------------------------------------------------------


@pytest.fixture
def merged(records, second_clinician, privacy_officer):
    merge = propose(records, by=second_clinician)
    services.person_merge_approve(merge=merge, by=privacy_officer)
    records.kept.refresh_from_db()
    records.duplicate.refresh_from_db()
    return merge


@pytest.mark.parametrize("persona", ["front_desk", "clinician", "privacy_officer"])
def test_the_merged_records_page_points_to_the_kept_record(client, login, records, merged, persona):
    login(persona)
    response = client.get(reverse("visits:person", args=[records.duplicate.pk]))
    html = response.content.decode()
    assert response.status_code == 200
    assert "This record was merged into the record of Sam Rivera" in html
    assert reverse("visits:person", args=[records.kept.pk]) in html
    assert "Edit details" not in html
    history = response.context.get("history")
    assert (history is not None) == (persona == "privacy_officer")
    if history is not None:
        assert [line.summary for line in history.merges] == [
            f"This record was merged into Sam Rivera (record #{records.kept.pk})."
        ]
    edit = client.get(reverse("visits:person_edit", args=[records.duplicate.pk]))
    assert edit.status_code in (302, 403)


def test_the_kept_records_page_shows_both_records_history_and_the_merge(
    client, records, merged, clinician, privacy_officer
):
    client.force_login(clinician)
    page = client.get(reverse("visits:person", args=[records.kept.pk]))
    assert len(page.context["visits"]) == 3
    assert {g.words for g in page.context["goals"]} == {
        "Keep my phone charged",
        "A place of my own",
    }
    client.force_login(privacy_officer)
    page = client.get(reverse("visits:person", args=[records.kept.pk]))
    history = page.context["history"]
    assert {c.person_id for c in history.changes} <= {records.kept.pk, records.duplicate.pk}
    assert [line.summary for line in history.merges] == [
        f"Sammy (record #{records.duplicate.pk}) was merged into this record."
    ]
    assert "was merged into this record" in page.content.decode()


def test_the_privacy_officers_filters_for_the_kept_record_include_the_merged_one(
    client, records, merged, privacy_officer
):
    kept, duplicate = records.kept, records.duplicate
    client.force_login(privacy_officer)
    log = client.get(reverse("visits:access_log"), {"person": kept.pk})
    assert duplicate.pk in {e.person_id for e in log.context["page"].object_list}
    assert "Records merged into theirs are included" in log.content.decode()
    changes = client.get(reverse("visits:changes"), {"person": kept.pk})
    assert duplicate.pk in {c.person_id for c in changes.context["page"].object_list}
    accounting = client.get(reverse("releases:accounting", args=[kept.pk]))
    lines = accounting.context["disclosures"] + accounting.context["attempts"]
    assert {line.row.person_id for line in lines} == {duplicate.pk}
    consents = client.get(reverse("releases:person_consents", args=[kept.pk]))
    assert [c.person_id for c, _status in consents.context["rows"]] == [duplicate.pk]
    assert "merged into this one" in consents.content.decode()


def test_the_merged_record_is_not_offered_to_book_or_record(client, records, merged, clinician):
    client.force_login(clinician)
    goal = client.post(
        reverse("visits:goal_add", args=[records.duplicate.pk]), {"words": "Stray goal"}
    )
    assert goal.status_code == 404
    found = client.post(urls(records)["find"], {"q": "Sam"})
    assert found.context["found"] == []


def test_urls_carry_ids_never_names(client, records, clinician, privacy_officer):
    client.force_login(clinician)
    response = propose_form(client, records)
    merge = PersonMerge.objects.get()
    for url in [*urls(records, merge).values(), response.url]:
        for name in ("Sam", "Rivera", "Sammy"):
            assert name not in url
    assert uuid.UUID(str(merge.nonce))
