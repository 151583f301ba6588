from django.urls import path

from . import views

app_name = "maintenance"

urlpatterns = [
    path("maintenance/", views.task_list, name="task-list"),
    path("maintenance/tasks/new/", views.task_edit, name="task-create"),
    path("maintenance/tasks/<int:pk>/", views.task_detail, name="task-detail"),
    path("maintenance/tasks/<int:pk>/edit/", views.task_edit, name="task-edit"),
    path("maintenance/tasks/<int:pk>/start/", views.task_start, name="task-start"),
    path("maintenance/runs/<int:pk>/", views.run_detail, name="run-detail"),
    path("maintenance/runs/<int:pk>/progress/", views.run_progress_json, name="run-progress"),
    path("maintenance/runs/<int:pk>/cancel/", views.run_cancel_view, name="run-cancel"),
    path("maintenance/runs/<int:pk>/retry/", views.run_retry_view, name="run-retry"),
    path("maintenance/runs/<int:pk>/rollback/", views.run_rollback_view, name="run-rollback"),
    path("maintenance/credentials/", views.credential_list, name="credential-list"),
    path("maintenance/credentials/new/", views.credential_edit, name="credential-create"),
    path("maintenance/credentials/<int:pk>/", views.credential_edit, name="credential-edit"),
]
