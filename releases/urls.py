"""The privacy officer's pages. Each area's view module lists its own routes; joined here."""

from releases.views import accounting, consents, incoming, outgoing, registry

app_name = "releases"

urlpatterns = [
    *registry.urlpatterns,
    *consents.urlpatterns,
    *incoming.urlpatterns,
    *outgoing.urlpatterns,
    *accounting.urlpatterns,
]
