from django.urls import path

from .views import alerts, dashboard, health, incidents, probe, reports

app_name = "monitoring"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("dashboard/snapshot", dashboard.dashboard_data, name="dashboard-data"),
    path("healthz", health.liveness, name="liveness"),
    path("readyz", health.readiness, name="readiness"),
    path("metrics", health.metrics, name="metrics"),
    path("probe/", probe.probe_page, name="probe"),
    path("probe/run", probe.probe_run, name="probe-run"),
    path("reports/", reports.reports_page, name="reports"),
    path("reports/<slug:name>.csv", reports.report_csv, name="report-csv"),
    path("incidents/", incidents.incident_list, name="incident-list"),
    path("incidents/<int:pk>/", incidents.incident_detail, name="incident-detail"),
    path("incidents/<int:pk>/close/", incidents.incident_close_view, name="incident-close"),
    path("hosts/<int:pk>/return/", incidents.host_return, name="host-return"),
    path("faults/", incidents.faults, name="faults"),
    path("faults/hosts/<int:pk>/", incidents.fault_host, name="fault-host"),
    path(
        "faults/regions/<int:pk>/drop-address/",
        incidents.fault_drop_address,
        name="fault-drop-address",
    ),
    path("alerts/", alerts.alert_list_page, name="alert-list"),
    path("alerts/<int:pk>/", alerts.alert_detail_page, name="alert-detail"),
    path("alerts/<int:pk>/acknowledge/", alerts.alert_acknowledge_view, name="alert-acknowledge"),
    path("alerts/<int:pk>/close/", alerts.alert_close_view, name="alert-close"),
]
