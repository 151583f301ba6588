from rest_framework.routers import SimpleRouter

from .views import AlertViewSet, IncidentViewSet

# SimpleRouter: the API root view is the allocation router's, at the same prefix.
router = SimpleRouter(trailing_slash=True)
router.register("alerts", AlertViewSet, basename="alert")
router.register("incidents", IncidentViewSet, basename="incident")

urlpatterns = router.urls
