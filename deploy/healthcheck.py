"""The image's HEALTHCHECK: healthy when this container's fapiao process answers /healthz, whichever it is (the
gateway on FAPIAO_HTTP_PORT, a worker on FAPIAO_WORKER_PORT, the lag exporter on FAPIAO_LAG_EXPORTER_PORT)."""

import os
import sys
import urllib.request

PORTS = (("FAPIAO_HTTP_PORT", "8080"), ("FAPIAO_WORKER_PORT", "6066"), ("FAPIAO_LAG_EXPORTER_PORT", "6065"))

for name, default in PORTS:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{os.environ.get(name, default)}/healthz", timeout=2) as r:
            if r.status == 200:
                sys.exit(0)
    except OSError:
        continue
sys.exit(1)
