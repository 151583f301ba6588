from django.urls import path

from .views import ConnectView

app_name = "thin-client-v1"

urlpatterns = [
    path("connect", ConnectView.as_view(), name="connect"),
]
