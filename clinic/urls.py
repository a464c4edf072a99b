from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from clinic import views

urlpatterns = [
    path("", views.home, name="home"),
    path("site/", views.switch_site, name="switch_site"),
    path("healthz/", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("queue/", include("queues.urls")),
    path("", include("visits.urls")),
    path("privacy/", include("releases.urls")),
    path("reports/", include("reports.urls")),
    path("staff/", include("clinic.staff_views")),
    path("admin/", admin.site.urls),
]
