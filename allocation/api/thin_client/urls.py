from django.urls import path

from .views import ConnectView, ConsoleFileView, DisconnectView, HeartbeatView

app_name = "thin-client-v1"

urlpatterns = [
    path("connect", ConnectView.as_view(), name="connect"),
    path("disconnect", DisconnectView.as_view(), name="disconnect"),
    path("heartbeat", HeartbeatView.as_view(), name="heartbeat"),
    path("sessions/<str:session_id>/console.vv", ConsoleFileView.as_view(), name="console-file"),
]
