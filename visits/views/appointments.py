"""appointments pages."""

urlpatterns: list = []
