"""Pages of the simulations."""

from django.urls import path

from . import credit_views, replay_views

app_name = "simulation"

urlpatterns: list = [
    path("hosts/<int:pk>/scheduler/", credit_views.host_scheduler, name="host-scheduler"),
    path("simulation/placement/", replay_views.placement, name="placement"),
]
