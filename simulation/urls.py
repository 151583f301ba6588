"""Pages of the simulations."""

app_name = "simulation"

urlpatterns: list = []
