"""Tox-screen conversations: saving, bad input, who may see them, the access log, language."""

import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from clinic.models import AccessLog
from tests.factories import PersonFactory
from visits.errors import VisitError
from visits.models import Substance, ToxResult, ToxScreen, Visit
from visits.services.tox import tox_screen_record

POLICY = (
    "The result does not change a prescription, a place in line or access to care. "
    "It is here to start a conversation."
)


@pytest.fixture
def person(site):
    return PersonFactory(site=site, name="Jess")


@pytest.fixture
def visit(person, clinician):
    return Visit.objects.create(
        site=person.site, person=person, started_at=timezone.now(), opened_by=clinician
    )


def today(site):
    return timezone.localdate(timezone.now(), site.tz)


def form_data(site, **overrides) -> dict:
    data = {
        "own_account": "Some fentanyl on Friday, my bupe every day",
        "specimen": "urine",
        "collected_on": today(site).isoformat(),
        **{f"result_{s}": "not_tested" for s in Substance.values},
        "result_fentanyl": "positive",
        "result_buprenorphine": "expected",
        "result_cocaine": "negative",
        "talked_fentanyl_supply": "on",
        "talked_naloxone_given": "on",
        "decision": "Will use test strips and not use alone",
        "note": "Took two kits.",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def record(visit, by, **overrides):
    kwargs = {
        "visit": visit,
        "by": by,
        "specimen": "urine",
        "collected_on": today(visit.site),
        "results": {"fentanyl": "positive", "buprenorphine": "expected"},
        **overrides,
    }
    return tox_screen_record(**kwargs)


# --- saving -------------------------------------------------------------------------------


def test_the_form_states_the_policy_and_asks_their_account_before_any_result(
    client, visit, clinician
):
    client.force_login(clinician)
    response = client.get(reverse("visits:tox_new", args=[visit.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert POLICY in html
    assert html.index('name="own_account"') < html.index('name="result_fentanyl"')
    # Every substance has a row, "not tested" chosen until someone says otherwise.
    for substance in Substance.values:
        assert (
            f'name="result_{substance}" value="not_tested" id="id_result_{substance}_3" checked'
            in html
        )
    assert html.count(" checked") == len(Substance.values)
    assert "Expected (medication present)" in html
    assert 'type="date"' in html


def test_saving_records_each_result_the_conversation_and_who(client, visit, clinician):
    client.force_login(clinician)
    response = client.post(reverse("visits:tox_new", args=[visit.pk]), form_data(visit.site))
    screen = ToxScreen.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("visits:tox_detail", args=[screen.pk])
    assert screen.visit == visit
    assert screen.own_account == "Some fentanyl on Friday, my bupe every day"
    assert screen.talked_fentanyl_supply and screen.talked_naloxone_given
    assert not screen.talked_mixing
    assert screen.decision == "Will use test strips and not use alone"
    assert screen.recorded_by == clinician
    assert dict(screen.results.values_list("substance", "result")) == {
        "fentanyl": "positive",
        "buprenorphine": "expected",
        "cocaine": "negative",
    }


def test_the_persons_account_is_optional(visit, clinician):
    screen = record(visit, clinician, own_account="")
    assert screen.own_account == ""


def test_a_result_for_a_substance_not_in_the_list_is_refused_and_nothing_is_saved(
    client, visit, clinician
):
    client.force_login(clinician)
    response = client.post(
        reverse("visits:tox_new", args=[visit.pk]),
        form_data(visit.site, result_kratom="positive"),
    )
    assert response.status_code == 200
    assert "kratom is not in the list of substances; nothing was saved." in (
        response.content.decode()
    )
    assert not ToxScreen.objects.exists()
    assert not ToxResult.objects.exists()
    with pytest.raises(VisitError) as error:
        record(visit, clinician, results={"fentanyl": "positive", "kratom": "positive"})
    assert error.value.code == "unknown_substance"
    assert not ToxScreen.objects.exists()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"result_fentanyl": "dirty"}, "Please choose negative, positive, expected or not tested"),
        ({"specimen": "hair"}, "Please choose urine or oral fluid."),
        ({"specimen": None}, "Please choose urine or oral fluid."),
        ({"collected_on": "yesterday"}, "Please give the date as YYYY-MM-DD."),
        ({"collected_on": "2999-01-01"}, "The date cannot be in the future."),
        ({"collected_on": "0001-01-01"}, "before this site&#x27;s first day of records"),
        (
            {
                "result_fentanyl": "not_tested",
                "result_buprenorphine": "not_tested",
                "result_cocaine": "not_tested",
            },
            "Please record a result for at least one substance that was tested.",
        ),
        ({"note": "x" * 8001}, "at most 8000 characters"),
    ],
)
def test_bad_tox_input_gets_a_clear_message_and_nothing_is_saved(
    client, visit, clinician, overrides, message
):
    client.force_login(clinician)
    response = client.post(
        reverse("visits:tox_new", args=[visit.pk]), form_data(visit.site, **overrides)
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not ToxScreen.objects.exists()


def test_a_closed_visit_takes_no_tox_screen(client, visit, clinician):
    visit.ended_at = timezone.now()
    visit.save()
    client.force_login(clinician)
    url = reverse("visits:tox_new", args=[visit.pk])
    page = client.get(url).content.decode()
    assert "This visit is closed" in page
    assert 'name="result_fentanyl"' not in page
    response = client.post(url, form_data(visit.site))
    assert "This visit is closed" in response.content.decode()
    assert not ToxScreen.objects.exists()
    with pytest.raises(VisitError) as error:
        record(visit, clinician)
    assert error.value.code == "visit_closed"


def test_language_check_highlights_dirty_urine_after_saving_and_never_rewrites(
    client, visit, clinician
):
    client.force_login(clinician)
    note = "Said the last dirty urine was a mistake."
    response = client.post(
        reverse("visits:tox_new", args=[visit.pk]), form_data(visit.site, note=note), follow=True
    )
    assert response.status_code == 200
    assert ToxScreen.objects.get().note == note
    html = response.content.decode()
    assert (
        '<mark class="language" title="Consider: negative / positive result">dirty urine</mark>'
        in html
    )
    assert "consider: negative / positive result" in html


# --- who may see it -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "status"),
    [
        ("clinician", 200),
        ("front_desk", 403),
        ("director", 403),
        ("privacy_officer", 403),
        ("other_site_clinician", 404),
    ],
)
def test_tox_visibility_per_role(client, request, visit, clinician, persona, status):
    screen = record(visit, clinician)
    client.force_login(request.getfixturevalue(persona))
    assert client.get(reverse("visits:tox_detail", args=[screen.pk])).status_code == status
    new_status = client.get(reverse("visits:tox_new", args=[visit.pk])).status_code
    assert new_status == status
    posted = client.post(reverse("visits:tox_new", args=[visit.pk]), form_data(visit.site))
    assert posted.status_code == (302 if status == 200 else status)
    expected_rows = 2 if status == 200 else 1
    assert ToxScreen.objects.count() == expected_rows
    if status != 200:
        assert not AccessLog.objects.filter(what=AccessLog.What.TOX).exists()


def test_anonymous_is_sent_to_login(client, visit, clinician):
    screen = record(visit, clinician)
    for url in (
        reverse("visits:tox_detail", args=[screen.pk]),
        reverse("visits:tox_new", args=[visit.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302
        assert response.url.startswith(reverse("login") + "?next=")


def test_opening_a_tox_screen_writes_an_access_log_row(client, visit, clinician, person):
    screen = record(visit, clinician)
    client.force_login(clinician)
    client.get(reverse("visits:tox_detail", args=[screen.pk]))
    client.get(reverse("visits:tox_detail", args=[screen.pk]))
    rows = AccessLog.objects.filter(what=AccessLog.What.TOX)
    assert rows.count() == 2
    row = rows.first()
    assert (row.user, row.site, row.person, row.object_id) == (
        clinician,
        visit.site,
        person,
        str(screen.pk),
    )


def test_opening_the_visit_page_logs_the_visit_and_each_tox_screen_shown(
    client, visit, clinician, person
):
    first = record(visit, clinician)
    second = record(visit, clinician, results={"cocaine": "negative"})
    client.force_login(clinician)

    response = client.get(reverse("visits:visit", args=[visit.pk]))

    assert response.status_code == 200
    assert "Fentanyl: positive" in response.content.decode()
    rows = AccessLog.objects.filter(user=clinician, person=person)
    assert sorted(rows.values_list("what", "object_id")) == sorted(
        [
            (AccessLog.What.VISIT, str(visit.pk)),
            (AccessLog.What.TOX, str(first.pk)),
            (AccessLog.What.TOX, str(second.pk)),
        ]
    )


def test_the_tox_partial_shows_nothing_to_someone_outside_the_care_team(
    rf, visit, clinician, front_desk
):
    screen = record(visit, clinician)
    request = rf.get("/")
    request.user = front_desk
    request.site = visit.site
    html = render_to_string(
        "visits/_visit_tox.html", {"tox_screens": [screen], "visit": visit}, request=request
    )
    assert "Fentanyl" not in html
