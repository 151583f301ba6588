from django.urls import path

from . import views

app_name = "pools"

urlpatterns = [
    path("pools/", views.pool_list, name="pool-list"),
    path("pools/<int:pk>/", views.pool_detail, name="pool-detail"),
    path("pools/<int:pk>/resume/", views.pool_resume_view, name="pool-resume"),
    path("pools/<int:pk>/schedules/", views.schedule_add, name="schedule-add"),
    path(
        "pools/<int:pk>/schedules/<int:schedule_pk>/delete/",
        views.schedule_delete,
        name="schedule-delete",
    ),
    path("vms/<int:pk>/", views.vm_detail, name="vm-detail"),
    path("hosts/", views.host_list, name="host-list"),
    path("hosts/<int:pk>/", views.host_edit, name="host-edit"),
    path("hosts/<int:pk>/clear/", views.host_clear, name="host-clear"),
    path("scheduling/", views.scheduling, name="scheduling"),
    path("regions/<int:pk>/", views.region_edit, name="region-edit"),
]
