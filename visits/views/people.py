"""people pages."""

urlpatterns: list = []
