"""visit pages."""

urlpatterns: list = []
