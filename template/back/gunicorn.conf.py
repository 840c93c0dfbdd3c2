"""gunicorn settings of the image's CMD (`gunicorn --config gunicorn.conf.py <package>.wsgi`).

gthread: WEB_CONCURRENCY processes (default: one per core, at most 4) x
GUNICORN_THREADS threads (default 4). Each thread keeps one persistent
connection to PostgreSQL (CONN_MAX_AGE), so the database sees at most
workers x threads connections from this container (16 by default); keep the
sum over every running backend below max_connections (100).
"""

import os

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", min(os.process_cpu_count() or 2, 4)))
# 4 threads: scripts/bench_back.py of the template measured 2 workers x 4
# threads well ahead of x8 and x16 on a 2-core machine (less GIL contention,
# a lower p99); raise WEB_CONCURRENCY with the cores, not the threads.
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
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
