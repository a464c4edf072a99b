"""Management commands: seed_demo, display_link and close_day."""

import os
import re
import subprocess
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from clinic import roles
from clinic.models import Membership, Person, Room, Service, Site
from clinic.sites import can
from queues import services
from queues.models import Arrival, ArrivalEvent, State
from reports._sql import day_number
from reports.models import SiteDay, Stale
from tests.conftest import ROOT, _test_database_url
from tests.factories import check_in, make_staff
from visits.models import Visit


@pytest.fixture
def fast_passwords(settings):
    # seed_demo hashes a password for every account; the default hasher is slow on purpose.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def debug_on(settings, fast_passwords):
    settings.DEBUG = True


def seed(*args) -> str:
    out = StringIO()
    call_command("seed_demo", *args, stdout=out)
    return out.getvalue()


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (
            Site,
            Service,
            Room,
            get_user_model(),
            Membership,
            Person,
            Arrival,
            ArrivalEvent,
            Visit,
        )
    }


# --- seed_demo ---------------------------------------------------------------------------------


def test_seed_demo_is_idempotent(db, debug_on):
    seed("--password", "demo-pass-1")
    first = counts()
    seed("--password", "demo-pass-1")

    assert counts() == first
    assert first["Site"] == 1
    assert first["Person"] > 0
    assert Arrival.objects.filter(state=State.WAITING).count() == 3
    assert Arrival.objects.filter(state=State.DONE).count() > 0


def test_seed_demo_refuses_with_debug_off(db, settings, fast_passwords):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="--force"):
        seed("--password", "demo-pass-1")

    assert not Site.objects.exists()
    assert not get_user_model().objects.exists()


def test_seed_demo_runs_with_debug_off_when_forced(db, settings, fast_passwords):
    settings.DEBUG = False

    seed("--password", "demo-pass-1", "--force")

    assert Site.objects.filter(slug="riverside").exists()


def test_seed_demo_puts_each_demo_account_in_its_role_at_the_demo_site(db, debug_on):
    seed("--password", "demo-pass-1")

    site = Site.objects.get(slug="riverside")
    for username, group in [
        ("frontdesk", roles.FRONT_DESK),
        ("clinician", roles.CLINICIAN),
        ("director", roles.DIRECTOR),
        ("privacy", roles.PRIVACY_OFFICER),
    ]:
        user = get_user_model().objects.get(username=username)
        membership = user.memberships.get(site=site)
        assert list(membership.roles.values_list("name", flat=True)) == [group], username
        assert not user.groups.exists(), username
        assert user.check_password("demo-pass-1"), username


def test_seed_demo_roles_give_the_queue_permissions_of_product_md(db, debug_on):
    seed("--password", "demo-pass-1")
    site = Site.objects.get(slug="riverside")
    user = get_user_model().objects.get

    assert can(user(username="frontdesk"), "queue.check_in", site)
    assert not can(user(username="frontdesk"), "queue.call_arrival", site)
    assert can(user(username="clinician"), "queue.call_arrival", site)
    assert not can(user(username="director"), "queue.view_queue", site)
    assert not can(user(username="privacy"), "queue.view_queue", site)


def test_seed_demo_generates_and_prints_a_password_when_none_is_given(db, debug_on):
    output = seed()

    lines = re.findall(r"^\s+frontdesk\s+(\S+)$", output, flags=re.MULTILINE)
    assert len(lines) == 1
    password = lines[0]
    assert len(password) >= 12
    assert get_user_model().objects.get(username="frontdesk").check_password(password)
    assert get_user_model().objects.get(username="privacy").check_password(password)


def test_seed_demo_generates_a_different_password_each_time(db, debug_on):
    first = re.search(r"^\s+clinician\s+(\S+)$", seed(), flags=re.MULTILINE).group(1)
    second = re.search(r"^\s+clinician\s+(\S+)$", seed(), flags=re.MULTILINE).group(1)

    assert first != second
    assert get_user_model().objects.get(username="clinician").check_password(second)


def test_seed_demo_prints_the_given_password(db, debug_on):
    output = seed("--password", "my-own-demo-pw")
    assert re.search(r"^\s+director\s+my-own-demo-pw$", output, flags=re.MULTILINE)


# --- display_link ------------------------------------------------------------------------------


def test_display_link_prints_the_link_of_a_site(site, other_site):
    out = StringIO()

    call_command("display_link", "--site", "riverside", stdout=out)

    assert out.getvalue().strip() == (
        f"Riverside: http://127.0.0.1:8000/queue/display/{site.display_token}/"
    )
    assert other_site.display_token not in out.getvalue()


def test_display_link_prints_every_active_site_and_honours_base_url(site, other_site):
    Site.objects.create(name="Closed", slug="closed", is_active=False)
    out = StringIO()

    call_command("display_link", "--base-url", "https://clinic.example.org/", stdout=out)

    lines = out.getvalue().strip().splitlines()
    assert lines == [
        f"Hillside: https://clinic.example.org/queue/display/{other_site.display_token}/",
        f"Riverside: https://clinic.example.org/queue/display/{site.display_token}/",
    ]


def test_display_link_puts_the_clinics_sites_first_and_labels_synthetic_ones(site, other_site):
    synthetic = Site.objects.create(name="Alder Community Health", slug="synthetic-alder")
    out = StringIO()

    call_command("display_link", stdout=out)

    assert out.getvalue().strip().splitlines() == [
        f"Hillside: http://127.0.0.1:8000/queue/display/{other_site.display_token}/",
        f"Riverside: http://127.0.0.1:8000/queue/display/{site.display_token}/",
        "Alder Community Health (synthetic data for the reports): "
        f"http://127.0.0.1:8000/queue/display/{synthetic.display_token}/",
    ]


def _as_typed_in_a_shell() -> dict[str, str]:
    """The environment of someone at a shell in the checkout: none of the tests' settings."""
    left_out = {"DEBUG", "SECRET_KEY", "DJANGO_SETTINGS_MODULE", "MAKEFLAGS", "MFLAGS"}
    return {k: v for k, v in os.environ.items() if k not in left_out}


@pytest.mark.django_db(transaction=True)
def test_make_display_link_works_as_the_readme_says_with_no_configuration(site, settings):
    synthetic = Site.objects.create(name="Alder Community Health", slug="synthetic-alder")
    env = {
        **_as_typed_in_a_shell(),
        # The database `make run` would have made: here, the tests' own.
        "DATABASE_URL": _test_database_url(),
        "DATABASE_OWNER_URL": _test_database_url(owner=True) if settings.DATABASE_OWNER else "",
    }

    result = subprocess.run(
        ["make", "-s", "display-link"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines() == [
        "Waiting-room display links (open one on the TV):",
        f"Riverside: http://127.0.0.1:8000/queue/display/{site.display_token}/",
        "Alder Community Health (synthetic data for the reports): "
        f"http://127.0.0.1:8000/queue/display/{synthetic.display_token}/",
    ]


def test_make_run_prints_the_display_links_through_make_display_link():
    dry_run = subprocess.run(
        ["make", "-n", "--no-print-directory", "run"],
        cwd=ROOT,
        env=_as_typed_in_a_shell(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert dry_run.returncode == 0, dry_run.stderr
    commands = dry_run.stdout.splitlines()
    links = next(i for i, c in enumerate(commands) if "manage.py display_link" in c)
    assert any("generate_synthetic" in c for c in commands[:links])
    assert "runserver" in commands[-1]


def test_display_link_link_opens_the_display(client, site):
    out = StringIO()
    call_command("display_link", "--site", "riverside", stdout=out)
    path = out.getvalue().strip().split("http://127.0.0.1:8000", 1)[1]

    assert client.get(path).status_code == 200


def test_display_link_errors_on_an_unknown_site(site):
    with pytest.raises(CommandError, match="No active site with the short name 'nowhere'"):
        call_command("display_link", "--site", "nowhere", stdout=StringIO())


def test_display_link_errors_when_there_is_no_site(db):
    with pytest.raises(CommandError, match="No active site yet"):
        call_command("display_link", stdout=StringIO())


# --- close_day ---------------------------------------------------------------------------------


def test_close_day_command_closes_everyone_not_seen_and_nothing_else(
    site, other_site, front_desk, clinician
):
    waiting = check_in(site=site, by=front_desk, name="Marcus")
    called = check_in(site=site, by=front_desk, name="Jess")
    services.arrival_call(arrival=called, by=clinician, revision=None)
    stepped_out = check_in(site=site, by=front_desk, name="River")
    services.arrival_step_out(arrival=stepped_out, by=front_desk, revision=None)
    with_staff = check_in(site=site, by=front_desk, name="Dee")
    services.arrival_start(arrival=with_staff, by=clinician, revision=None)
    done = check_in(site=site, by=front_desk, name="Kat")
    services.arrival_start(arrival=done, by=clinician, revision=None)
    services.arrival_finish(arrival=done, by=clinician, revision=None)
    elsewhere = check_in(
        site=other_site, by=make_staff(site=other_site, roles=[roles.FRONT_DESK]), name="Oz"
    )
    out = StringIO()

    call_command("close_day", "--site", "riverside", stdout=out)

    states = {a.person.name: a.state for a in Arrival.objects.select_related("person")}
    assert states == {
        "Marcus": State.LEFT,
        "Jess": State.LEFT,
        "River": State.LEFT,
        "Dee": State.WITH_STAFF,
        "Kat": State.DONE,
        "Oz": State.WAITING,
    }
    assert out.getvalue().strip() == (
        "Riverside: 3 not seen yet, recorded as left before being seen."
    )
    closing = ArrivalEvent.objects.filter(kind="day_closed")
    assert {e.arrival_id for e in closing} == {waiting.pk, called.pk, stepped_out.pk}
    assert all(e.by is None for e in closing)
    assert elsewhere.pk not in {e.arrival_id for e in closing}


def test_close_day_command_without_site_closes_every_site(site, other_site, front_desk):
    check_in(site=site, by=front_desk, name="Marcus")
    check_in(site=other_site, by=make_staff(site=other_site, roles=[roles.FRONT_DESK]), name="Oz")
    out = StringIO()

    call_command("close_day", stdout=out)

    assert not Arrival.objects.exclude(state=State.LEFT).exists()
    assert "Hillside: 1 not seen yet" in out.getvalue()
    assert "Riverside: 1 not seen yet" in out.getvalue()


def test_close_day_command_twice_changes_nothing_the_second_time(site, front_desk):
    check_in(site=site, by=front_desk, name="Marcus")
    call_command("close_day", stdout=StringIO())
    events = ArrivalEvent.objects.count()
    out = StringIO()

    call_command("close_day", stdout=out)

    assert ArrivalEvent.objects.count() == events
    assert "Riverside: 0 not seen yet" in out.getvalue()


def test_close_day_command_errors_on_an_unknown_site(site, front_desk):
    arrival = check_in(site=site, by=front_desk, name="Marcus")

    with pytest.raises(CommandError, match="No active site with the short name 'nowhere'"):
        call_command("close_day", "--site", "nowhere", stdout=StringIO())

    arrival.refresh_from_db()
    assert arrival.state == State.WAITING


def test_close_day_command_brings_the_report_summaries_up_to_date(site, front_desk):
    marcus = check_in(site=site, by=front_desk, name="Marcus")
    check_in(site=site, by=front_desk, name="Jess")
    assert Stale.objects.exists()

    call_command("close_day", stdout=StringIO())

    assert not Stale.objects.exists()
    day = SiteDay.objects.get(site_id=site.pk, d=day_number(marcus.day))
    assert (day.arrivals, day.lwbs, day.waiting) == (2, 2, 0)
