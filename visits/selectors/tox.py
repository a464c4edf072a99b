from visits.models import ToxScreen


def visit_tox_screens(*, visit) -> list[ToxScreen]:
    return list(
        ToxScreen.objects.filter(visit=visit)
        .select_related("recorded_by")
        .prefetch_related("results")
        .order_by("collected_on", "pk")
    )
