"""Goals in the person's own words: lifecycle, progress, bad input, who may do what."""

import pytest
from django.urls import reverse
from django.utils import timezone

from clinic.models import Person
from tests.factories import PersonFactory
from tests.helpers import messages_of
from visits.errors import VisitError
from visits.models import Goal, GoalProgress, Visit, VisitParticipant
from visits.services import goals as services


@pytest.fixture
def person(site):
    return PersonFactory(site=site, name="Marcus")


@pytest.fixture
def other_person(other_site):
    return PersonFactory(site=other_site, name="Nadia")


def open_visit(person, by) -> Visit:
    return Visit.objects.create(
        site=person.site, person=person, started_at=timezone.now(), opened_by=by
    )


# --- the lifecycle ------------------------------------------------------------------------


def test_goal_statuses_are_active_reached_changed_set_aside_and_never_failed():
    assert Goal.Status.values == ["active", "reached", "changed", "set_aside"]
    assert not any("fail" in v or "fail" in str(label).lower() for v, label in Goal.Status.choices)


def test_a_goal_is_kept_in_the_persons_words_and_starts_active(person, clinician):
    goal = services.goal_set(person=person, words="  Get my ID back  ", by=clinician)
    goal.refresh_from_db()
    assert goal.words == "Get my ID back"
    assert goal.status == Goal.Status.ACTIVE
    assert goal.set_on == timezone.localdate(timezone.now(), person.site.tz)
    assert goal.visit is None
    assert goal.created_by == clinician


def test_status_change_records_when_it_changed(person, clinician):
    goal = services.goal_set(person=person, words="Housing", by=clinician)
    before = goal.status_changed_at
    later = before + timezone.timedelta(days=3)
    for status in ("reached", "changed", "set_aside", "active"):
        services.goal_change_status(goal=goal, status=status, by=clinician, now=later)
        goal.refresh_from_db()
        assert goal.status == status
        assert goal.status_changed_at == later


def test_the_same_status_again_keeps_the_original_time(person, clinician):
    goal = services.goal_set(person=person, words="Housing", by=clinician)
    first = goal.status_changed_at
    services.goal_change_status(
        goal=goal, status="active", by=clinician, now=first + timezone.timedelta(days=1)
    )
    goal.refresh_from_db()
    assert goal.status_changed_at == first


def test_any_step_counts_as_progress_and_is_dated(person, clinician):
    goal = services.goal_set(person=person, words="Fewer ER visits", by=clinician)
    services.goal_add_progress(goal=goal, note="Came in for the wound today", by=clinician)
    services.goal_add_progress(goal=goal, note="Called the housing line", by=clinician)
    notes = list(goal.progress.values_list("note", flat=True))
    assert notes == ["Came in for the wound today", "Called the housing line"]
    assert all(p.on and p.author == clinician for p in goal.progress.all())


def test_a_goal_set_in_a_visit_links_it_and_adds_the_author_to_the_team(
    person, clinician, second_clinician
):
    visit = open_visit(person, clinician)
    goal = services.goal_set(person=person, words="Keep my dog", by=second_clinician, visit=visit)
    assert goal.visit == visit
    assert VisitParticipant.objects.filter(visit=visit, user=second_clinician).exists()


# --- bad input ----------------------------------------------------------------------------


@pytest.mark.parametrize("words", ["", "   ", "\n\t", None])
def test_a_goal_with_no_words_is_refused_and_nothing_saved(person, clinician, words):
    with pytest.raises(VisitError) as error:
        services.goal_set(person=person, words=words, by=clinician)
    assert error.value.code == "goal_empty"
    assert not Goal.objects.exists()


def test_a_goal_too_long_is_refused(person, clinician):
    with pytest.raises(VisitError) as error:
        services.goal_set(person=person, words="x" * 2001, by=clinician)
    assert error.value.code == "too_long"
    assert not Goal.objects.exists()


def test_progress_with_no_words_is_refused(person, clinician):
    goal = services.goal_set(person=person, words="Housing", by=clinician)
    with pytest.raises(VisitError) as error:
        services.goal_add_progress(goal=goal, note="  ", by=clinician)
    assert error.value.code == "progress_empty"
    assert not GoalProgress.objects.exists()


@pytest.mark.parametrize("status", ["failed", "", "ACTIVE", "dropped"])
def test_an_unknown_status_is_refused(person, clinician, status):
    goal = services.goal_set(person=person, words="Housing", by=clinician)
    with pytest.raises(VisitError) as error:
        services.goal_change_status(goal=goal, status=status, by=clinician)
    assert error.value.code == "unknown_status"
    goal.refresh_from_db()
    assert goal.status == "active"


def test_a_closed_visit_or_someone_elses_visit_cannot_take_a_goal(person, clinician, site):
    closed = open_visit(person, clinician)
    closed.ended_at = timezone.now()
    closed.save()
    with pytest.raises(VisitError) as error:
        services.goal_set(person=person, words="Housing", by=clinician, visit=closed)
    assert error.value.code == "visit_closed"
    someone_else = open_visit(PersonFactory(site=site), clinician)
    with pytest.raises(VisitError) as error:
        services.goal_set(person=person, words="Housing", by=clinician, visit=someone_else)
    assert error.value.code == "wrong_visit"
    assert not Goal.objects.exists()


def test_a_future_date_is_refused(person, clinician):
    tomorrow = timezone.localdate(timezone.now(), person.site.tz) + timezone.timedelta(days=2)
    with pytest.raises(VisitError) as error:
        services.goal_set(person=person, words="Housing", by=clinician, set_on=tomorrow)
    assert error.value.code == "future_date"


# --- through the pages --------------------------------------------------------------------


def test_clinician_adds_a_goal_and_goes_back_to_the_page_it_came_from(client, person, clinician):
    client.force_login(clinician)
    visit = open_visit(person, clinician)
    response = client.post(
        reverse("visits:goal_add", args=[person.pk]),
        {"words": "See my daughter at Christmas", "visit": visit.pk, "next": "/queue/"},
    )
    assert response.status_code == 302
    assert response.url == "/queue/"
    goal = Goal.objects.get()
    assert (goal.person, goal.visit, goal.words) == (person, visit, "See my daughter at Christmas")
    assert "Goal saved." in messages_of(response)


def test_an_outside_next_is_not_followed(client, person, clinician):
    client.force_login(clinician)
    response = client.post(
        reverse("visits:goal_add", args=[person.pk]),
        {"words": "Housing", "next": "https://evil.example/"},
    )
    assert response.status_code == 302
    assert "evil" not in response.url


def test_an_empty_goal_posted_gets_a_clear_message_and_nothing_is_saved(client, person, clinician):
    client.force_login(clinician)
    response = client.post(reverse("visits:goal_add", args=[person.pk]), {"words": "  "})
    assert response.status_code == 302
    assert "Please write the goal in the person's own words." in messages_of(response)
    assert not Goal.objects.exists()


def test_a_broken_visit_id_gets_a_message_not_a_500(client, person, clinician):
    client.force_login(clinician)
    for bad in ("abc", "-1", "99999999", "99999999999999999999", "²"):
        response = client.post(
            reverse("visits:goal_add", args=[person.pk]), {"words": "Housing", "visit": bad}
        )
        assert response.status_code == 302
        assert messages_of(response)
    assert not Goal.objects.exists()


def test_status_and_progress_through_the_pages(client, person, clinician):
    client.force_login(clinician)
    goal = services.goal_set(person=person, words="Housing", by=clinician)
    response = client.post(reverse("visits:goal_status", args=[goal.pk]), {"status": "reached"})
    assert response.status_code == 302
    goal.refresh_from_db()
    assert goal.status == "reached"
    response = client.post(reverse("visits:goal_status", args=[goal.pk]), {"status": "failed"})
    assert "Please pick one of the statuses listed." in messages_of(response)
    goal.refresh_from_db()
    assert goal.status == "reached"
    client.post(reverse("visits:goal_progress", args=[goal.pk]), {"note": "Signed the lease"})
    assert list(goal.progress.values_list("note", flat=True)) == ["Signed the lease"]
    response = client.post(reverse("visits:goal_progress", args=[goal.pk]), {"note": ""})
    assert "Please write a few words about the step." in messages_of(response)
    assert goal.progress.count() == 1


def test_language_check_highlights_a_progress_note_after_saving_and_keeps_it_as_written(
    client, person, clinician
):
    client.force_login(clinician)
    goal = services.goal_set(person=person, words="Housing", by=clinician)
    response = client.post(
        reverse("visits:goal_progress", args=[goal.pk]),
        {"note": "Has been clean for a week"},
        follow=True,
    )
    assert GoalProgress.objects.get().note == "Has been clean for a week"
    html = response.content.decode()
    assert '<mark class="language"' in html
    assert "not currently using" in html


@pytest.mark.parametrize("persona", ["front_desk", "director", "privacy_officer"], ids=lambda p: p)
def test_roles_outside_the_care_team_get_403_on_every_goal_action(
    client, request, person, clinician, persona
):
    goal = services.goal_set(person=person, words="Housing", by=clinician)
    client.force_login(request.getfixturevalue(persona))
    urls = [
        (reverse("visits:goal_add", args=[person.pk]), {"words": "Another"}),
        (reverse("visits:goal_status", args=[goal.pk]), {"status": "set_aside"}),
        (reverse("visits:goal_progress", args=[goal.pk]), {"note": "A step"}),
    ]
    for url, data in urls:
        assert client.post(url, data).status_code == 403
    goal.refresh_from_db()
    assert (Goal.objects.count(), goal.status, goal.progress.count()) == (1, "active", 0)


def test_another_sites_person_and_goal_are_not_found(
    client, other_person, other_site_clinician, clinician
):
    goal = services.goal_set(person=other_person, words="Theirs", by=other_site_clinician)
    client.force_login(clinician)
    assert (
        client.post(reverse("visits:goal_add", args=[other_person.pk]), {"words": "x"}).status_code
        == 404
    )
    assert (
        client.post(reverse("visits:goal_status", args=[goal.pk]), {"status": "reached"})
    ).status_code == 404
    assert (
        client.post(reverse("visits:goal_progress", args=[goal.pk]), {"note": "x"})
    ).status_code == 404
    goal.refresh_from_db()
    assert goal.status == "active"


def test_anonymous_goes_to_login_and_get_is_405(client, person, clinician):
    url = reverse("visits:goal_add", args=[person.pk])
    response = client.post(url, {"words": "x"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    client.force_login(clinician)
    assert client.get(url).status_code == 405
    assert not Goal.objects.exists()
    assert Person.objects.count() == 1


def test_the_partials_list_active_goals_first_with_their_forms(rf, person, clinician):
    from django.template.loader import render_to_string

    from visits.selectors.goals import person_goals

    reached = services.goal_set(person=person, words="Reached one", by=clinician)
    services.goal_change_status(goal=reached, status="reached", by=clinician)
    services.goal_set(person=person, words="Active one", by=clinician)
    visit = open_visit(person, clinician)
    request = rf.get("/visit/")
    request.user = clinician
    request.site = visit.site
    html = render_to_string(
        "visits/_visit_goals.html",
        {"goals": person_goals(person=person), "visit": visit},
        request=request,
    )
    assert html.index("Active one") < html.index("Reached one")
    assert f'name="visit" value="{visit.pk}"' in html
    assert reverse("visits:goal_add", args=[person.pk]) in html
    html = render_to_string(
        "visits/_person_goals.html",
        {"goals": person_goals(person=person), "person": person},
        request=request,
    )
    assert html.index("Active one") < html.index("Reached one")
    assert 'name="visit"' not in html
