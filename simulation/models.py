"""Models of the simulations: stored runs."""
