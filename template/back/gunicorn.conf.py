"""gunicorn settings of the image's CMD (`gunicorn --config gunicorn.conf.py <package>.wsgi`).

gthread: WORKERS processes x THREADS threads. Each thread keeps one
persistent connection to PostgreSQL (CONN_MAX_AGE), so the database sees at
most WORKERS x THREADS connections from this container; keep that below
max_connections (100) across every running backend.
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
threads = int(os.environ.get("GUNICORN_THREADS", "8"))
# A request stuck longer than this is killed and its worker replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
# Log to stdout/stderr: `docker logs`. Access lines are opt-in (they cost throughput).
errorlog = "-"
accesslog = "-" if os.environ.get("GUNICORN_ACCESS_LOG", "0") == "1" else None
# gunicornc's control socket and the workers' heartbeat files: not in /app
# (read-only for the app user, bind-mounted in development).
control_socket = "/tmp/gunicorn.ctl"
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Trust X-Forwarded-* from the reverse proxy in front (any address: the
# container is only reachable through the Docker network and the proxy).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "*")
