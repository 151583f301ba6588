from django.urls import path

from .views import health

app_name = "monitoring"

urlpatterns = [
    path("", health.dashboard, name="dashboard"),
    path("healthz", health.liveness, name="liveness"),
    path("readyz", health.readiness, name="readiness"),
    path("metrics", health.metrics, name="metrics"),
]
