"""Each area's view module lists its own routes; they are joined here."""

from visits.views import appointments, goals, merge, people, tox, visit

app_name = "visits"

urlpatterns = [
    *visit.urlpatterns,
    *tox.urlpatterns,
    *goals.urlpatterns,
    *appointments.urlpatterns,
    *people.urlpatterns,
    *merge.urlpatterns,
]
