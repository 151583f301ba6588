"""Staff pages of monitoring and the load balancer's health checks, one module per
page family."""
