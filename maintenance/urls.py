from django.urls import path

from .views import credentials, runs, tasks

app_name = "maintenance"

urlpatterns = [
    path("maintenance/", tasks.task_list, name="task-list"),
    path("maintenance/tasks/new/", tasks.task_edit, name="task-create"),
    path("maintenance/tasks/<int:pk>/", tasks.task_detail, name="task-detail"),
    path("maintenance/tasks/<int:pk>/edit/", tasks.task_edit, name="task-edit"),
    path("maintenance/tasks/<int:pk>/start/", tasks.task_start, name="task-start"),
    path("maintenance/runs/", runs.run_list, name="run-list"),
    path("maintenance/runs/<int:pk>/", runs.run_detail, name="run-detail"),
    path("maintenance/runs/<int:pk>/progress/", runs.run_progress_json, name="run-progress"),
    path("maintenance/runs/<int:pk>/cancel/", runs.run_cancel_view, name="run-cancel"),
    path("maintenance/runs/<int:pk>/retry/", runs.run_retry_view, name="run-retry"),
    path("maintenance/runs/<int:pk>/rollback/", runs.run_rollback_view, name="run-rollback"),
    path("maintenance/credentials/", credentials.credential_list, name="credential-list"),
    path("maintenance/credentials/new/", credentials.credential_edit, name="credential-create"),
    path("maintenance/credentials/<int:pk>/", credentials.credential_edit, name="credential-edit"),
]
