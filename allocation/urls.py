from django.urls import path

from . import views

app_name = "allocation"

urlpatterns = [
    path("explain/", views.explain, name="explain"),
    path("allocators/", views.allocator_list, name="allocator-list"),
    path("allocators/new/", views.allocator_edit, name="allocator-create"),
    path("allocators/<int:pk>/", views.allocator_edit, name="allocator-edit"),
    path("terminals/", views.terminal_list, name="terminal-list"),
    path("terminals/import/", views.terminal_import, name="terminal-import"),
    path("terminals/<int:pk>/enroll/", views.terminal_enroll_view, name="terminal-enroll"),
]
