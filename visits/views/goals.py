"""goals pages."""

urlpatterns: list = []
