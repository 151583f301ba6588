from django.urls import path

from .views import feature_classes, hosts, pools, prewarm, regions, vms

app_name = "pools"

urlpatterns = [
    path("pools/", pools.pool_list, name="pool-list"),
    path("pools/<int:pk>/", pools.pool_detail, name="pool-detail"),
    path("pools/<int:pk>/resume/", pools.pool_resume_view, name="pool-resume"),
    path("pools/<int:pk>/schedules/", pools.schedule_add, name="schedule-add"),
    path(
        "pools/<int:pk>/schedules/<int:schedule_pk>/delete/",
        pools.schedule_delete,
        name="schedule-delete",
    ),
    path("pools/prewarm/", prewarm.prewarm, name="prewarm"),
    path("pools/prewarm/apply/", prewarm.prewarm_apply_view, name="prewarm-apply"),
    path("pools/shifts/<int:pk>/", prewarm.shift_edit, name="shift-edit"),
    path("pools/shifts/<int:pk>/delete/", prewarm.shift_delete_view, name="shift-delete"),
    path("vms/", vms.vm_list, name="vm-list"),
    path("vms/<int:pk>/", vms.vm_detail, name="vm-detail"),
    path("hosts/", hosts.host_list, name="host-list"),
    path("hosts/<int:pk>/", hosts.host_edit, name="host-edit"),
    path("hosts/<int:pk>/clear/", hosts.host_clear, name="host-clear"),
    path("scheduling/", regions.scheduling, name="scheduling"),
    path("classes/", feature_classes.featureclass_list, name="featureclass-list"),
    path("classes/<int:pk>/", feature_classes.featureclass_edit, name="featureclass-edit"),
    path(
        "classes/<int:pk>/apply/",
        feature_classes.featureclass_apply,
        name="featureclass-apply",
    ),
    path("regions/", regions.region_list, name="region-list"),
    path("regions/<int:pk>/", regions.region_edit, name="region-edit"),
]
