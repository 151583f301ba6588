from rest_framework.routers import SimpleRouter

from .views import GuestCredentialViewSet, MaintenanceRunViewSet, MaintenanceTaskViewSet

# SimpleRouter: the API root view is the allocation router's, at the same prefix.
router = SimpleRouter(trailing_slash=True)
router.register("maintenance-tasks", MaintenanceTaskViewSet, basename="maintenance-task")
router.register("maintenance-runs", MaintenanceRunViewSet, basename="maintenance-run")
router.register("guest-credentials", GuestCredentialViewSet, basename="guest-credential")

urlpatterns = router.urls
