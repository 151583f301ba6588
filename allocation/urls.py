from django.urls import path

from . import helpdesk_views, views

app_name = "allocation"

urlpatterns = [
    path("explain/", views.explain, name="explain"),
    path("helpdesk/", helpdesk_views.search, name="helpdesk"),
    path("helpdesk/users/<int:pk>/", helpdesk_views.user_page, name="helpdesk-user"),
    path(
        "helpdesk/bindings/<int:binding_pk>/<slug:name>/",
        helpdesk_views.action,
        name="helpdesk-action",
    ),
    path(
        "helpdesk/bindings/<int:binding_pk>/console.vv",
        helpdesk_views.console,
        name="helpdesk-console",
    ),
    path("allocators/", views.allocator_list, name="allocator-list"),
    path("allocators/new/", views.allocator_create, name="allocator-create"),
    path("allocators/<int:pk>/", views.allocator_edit, name="allocator-edit"),
    path("bindings/", views.binding_list, name="binding-list"),
    path("bindings/<int:pk>/", views.binding_detail, name="binding-detail"),
    path("terminals/", views.terminal_list, name="terminal-list"),
    path("terminals/import/", views.terminal_import, name="terminal-import"),
    path("terminals/<int:pk>/", views.terminal_detail, name="terminal-detail"),
    path("terminals/<int:pk>/enroll/", views.terminal_enroll_view, name="terminal-enroll"),
]
