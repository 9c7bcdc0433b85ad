"""URL wiring."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from wams.health import healthz

admin.site.site_header = "WAMS engineering"
admin.site.site_title = "WAMS admin"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/", include("wams.api.urls")),
    path("control/", include("wams.control.urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("dashboards.urls")),
]
