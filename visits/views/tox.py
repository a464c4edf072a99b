"""tox pages."""

urlpatterns: list = []
