from django.urls import path
from rest_framework.routers import DefaultRouter

from .bindings import BindingViewSet
from .views import AllocatorViewSet, ExplainView, TerminalViewSet

router = DefaultRouter(trailing_slash=True)
router.register("allocators", AllocatorViewSet, basename="allocator")
router.register("terminals", TerminalViewSet, basename="terminal")
router.register("bindings", BindingViewSet, basename="binding")

urlpatterns = [
    path("explain/", ExplainView.as_view(), name="explain"),
    *router.urls,
]
