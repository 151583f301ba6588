from django.urls import path

from . import views

app_name = "allocation"

urlpatterns = [
    path("explain/", views.explain, name="explain"),
]
