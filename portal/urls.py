"""The portal's URL map: staff pages, the ops API and the thin-client API."""

from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .auth import StaffLoginView

urlpatterns = [
    path("", include("monitoring.urls")),
    path("", include("allocation.urls")),
    path("", include("pools.urls")),
    path("", include("maintenance.urls")),
    path("", include("simulation.urls")),
    path("", include("portal.page_urls")),
    path("login/", StaffLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Browsers ask for /favicon.ico on pages that name no icon (the Django admin's).
    path("favicon.ico", RedirectView.as_view(url=f"{settings.STATIC_URL}favicon.svg")),
    # The admin signs in through the portal's own login (roles, lockout, audit).
    path("admin/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("admin/", admin.site.urls),
    path("api/thin-client/v1/", include("allocation.api.thin_client.urls")),
    path("api/v1/", include("allocation.api.ops.urls")),
    path("api/v1/", include("maintenance.api.urls")),
    path("api/v1/", include("monitoring.api.urls")),
    path("api/v1/", include("pools.api.urls")),
    path("api/v1/", include("portal.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
]
