from django.urls import path

from . import views

app_name = "monitoring"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("healthz", views.liveness, name="liveness"),
    path("readyz", views.readiness, name="readiness"),
    path("metrics", views.metrics, name="metrics"),
]
