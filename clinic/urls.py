from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from clinic import lock_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("site/", views.switch_site, name="switch_site"),
    path("healthz/", views.healthz, name="healthz"),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("unlock/", lock_views.unlock, name="unlock"),
    path("session/activity/", lock_views.activity, name="session_activity"),
    path("session/lock/", lock_views.lock, name="session_lock"),
    path("queue/", include("queues.urls")),
    path("", include("visits.urls")),
    path("privacy/", include("releases.urls")),
    path("reports/", include("reports.urls")),
    path("admin/", admin.site.urls),
]
