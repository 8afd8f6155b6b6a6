"""HTTP listeners of the daemon: the public front end, the admin API, and the balancer between them and the workers."""
