from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from clinic import account_views, csp, lock_views, lockout_views, login_views, views

urlpatterns = [
    path("", views.home, name="home"),
    path("site/", views.switch_site, name="switch_site"),
    path("healthz/", views.healthz, name="healthz"),
    path("healthz/live/", views.healthz_live, name="healthz_live"),
    path("csp-report/", csp.report, name="csp_report"),
    path("login/", login_views.SignInView.as_view(), name="login"),
    path("login/code/", login_views.SignInCodeView.as_view(), name="login_code"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("account/", account_views.account, name="account"),
    path("account/password/", account_views.password_change, name="account_password"),
    path(
        "account/sign-out-everywhere/",
        account_views.sign_out_everywhere,
        name="account_sign_out_everywhere",
    ),
    path(
        "account/second-factor/",
        account_views.second_factor_set_up,
        name="account_second_factor",
    ),
    path(
        "account/second-factor/remove/",
        account_views.second_factor_remove,
        name="account_second_factor_remove",
    ),
    path("privacy/lockouts/", lockout_views.lockout_log, name="lockout_log"),
    path("unlock/", lock_views.unlock, name="unlock"),
    path("session/activity/", lock_views.activity, name="session_activity"),
    path("session/lock/", lock_views.lock, name="session_lock"),
    path("queue/", include("queues.urls")),
    path("", include("visits.urls")),
    path("privacy/", include("releases.urls")),
    path("reports/", include("reports.urls")),
    path("staff/", include("clinic.staff_views")),
    path("admin/", admin.site.urls),
]
