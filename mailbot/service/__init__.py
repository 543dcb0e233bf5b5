"""Running as a service: the daemon's jobs, its status, systemd's notify protocol, backups."""
