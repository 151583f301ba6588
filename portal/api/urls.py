from rest_framework.routers import SimpleRouter

from .audit import AuditEventViewSet

# SimpleRouter: the API root view is the allocation router's, at the same prefix.
router = SimpleRouter(trailing_slash=True)
router.register("audit-events", AuditEventViewSet, basename="audit-event")

urlpatterns = router.urls
