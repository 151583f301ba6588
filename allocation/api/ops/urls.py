from django.urls import path
from rest_framework.routers import DefaultRouter

from .views import AllocatorViewSet, ExplainView, TerminalViewSet

router = DefaultRouter(trailing_slash=True)
router.register("allocators", AllocatorViewSet, basename="allocator")
router.register("terminals", TerminalViewSet, basename="terminal")

urlpatterns = [
    path("explain/", ExplainView.as_view(), name="explain"),
    *router.urls,
]
