from rest_framework.routers import SimpleRouter

from .views import FeatureClassViewSet, HostViewSet, PoolViewSet, RegionViewSet, VMViewSet

# SimpleRouter: the API root view is the allocation router's, at the same prefix.
router = SimpleRouter(trailing_slash=True)
router.register("regions", RegionViewSet, basename="region")
router.register("hosts", HostViewSet, basename="host")
router.register("pools", PoolViewSet, basename="pool")
router.register("vms", VMViewSet, basename="vm")
router.register("feature-classes", FeatureClassViewSet, basename="feature-class")

urlpatterns = router.urls
