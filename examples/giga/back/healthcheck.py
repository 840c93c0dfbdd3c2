#!/usr/bin/env python3
"""The image's HEALTHCHECK: GET /api/health/ on this container; healthy on 200.

/api/health/ is readiness (the isolated database answers and every migration
is applied), so the container is unhealthy while the database is unreachable.
Docker never restarts an unhealthy container: the status only drives
`depends_on: service_healthy` and Caddy's routing, hence readiness, not
liveness (/api/health/live/, Kubernetes' livenessProbe). Standard library
only: no curl in the image.
"""

import os
import sys
import urllib.error
import urllib.request

# The production server listens on GRANIAN_PORT; anything else on PORT.
port = os.environ.get("GRANIAN_PORT") or os.environ.get("PORT") or "8000"
url = f"http://127.0.0.1:{port}/api/health/"
try:
    with urllib.request.urlopen(url, timeout=8) as response:
        sys.exit(0 if response.status == 200 else 1)
except urllib.error.HTTPError as error:
    print(f"{url}: HTTP {error.code} {error.read(300).decode(errors='replace')}", file=sys.stderr)
except OSError as error:
    print(f"{url}: {error}", file=sys.stderr)
sys.exit(1)
