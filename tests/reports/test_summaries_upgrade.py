"""Upgrading a clinic that already has history: the migration that adds the triggers marks
everything already recorded as stale, so the first refresh builds the summaries for it."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from reports import summaries
from reports.models import SiteDay, Stale, VisitDay
from tests.reports.conftest import D
from tests.reports.test_summaries import snapshot

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _as_the_owner_role():
    """Migrating back and forth changes the schema: the owner role's work (with two roles)."""
    from clinic.db_roles import as_owner

    with as_owner():
        yield


BEFORE = [("reports", "0001_initial")]


def test_history_recorded_before_the_summaries_existed_is_summarised(build, site):
    person = build.person()
    build.visit(person, D(0))
    build.visit_with_med(person, D(3), 30)
    build.lwbs(person, D(40))
    expected = summaries_now()

    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        # Without the summary tables or triggers: a visit recorded by the previous version.
        build.visit(person, D(50))
    finally:
        call_command("migrate", verbosity=0)

    assert Stale.objects.exists()
    summaries.refresh()
    days = list(VisitDay.objects.filter(person_id=person.pk).order_by("d").values_list("d"))
    assert len(days) == len(expected["days"]) + 1
    assert SiteDay.objects.filter(site_id=site.pk).count() == expected["site_days"] + 1
    rows = snapshot()
    summaries.rebuild()
    assert snapshot() == rows


def summaries_now() -> dict:
    summaries.refresh()
    return {
        "days": list(VisitDay.objects.values_list("d", flat=True)),
        "site_days": SiteDay.objects.count(),
    }
