"""What the daemon tells the outside about itself (daemon process): Prometheus metrics (``metrics``) and
systemd's readiness, status and watchdog notifications (``sdnotify``)."""
