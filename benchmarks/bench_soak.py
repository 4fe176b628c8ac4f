"""The soak: a real backend under 1,000 jobs from many clients, over every bundled model.

Six live clients submit jobs across all loaded models, cancel some, vanish in the middle
of others; two silent clients submit and never read. ``backend.server.soak.run_soak``
counts what came back; this module starts the server the way the add-on does (its
own process, key in a private connection file, ``max_queue`` 8) and hands the figures
to the report. The promises: 0 frames lost, 0 jobs without a terminal message, 0
``queue_full`` to live clients that stay within ``max_queue`` themselves, 0 ``internal``
errors, and same seed, same dance.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

JOBS_FULL = 1000
JOBS_QUICK = 100
MAX_QUEUE = 8
CLIENT_TIMEOUT_S = 20.0
"""How long a silent client may leave its jobs unread before the server stops them."""


def bench_soak(quick: bool) -> dict[str, Any]:
    """Run the soak against a fresh CPU server; the figures as a dict."""
    from backend.server import ServerConfig, start_server_process
    from backend.server.soak import run_soak

    jobs = JOBS_QUICK if quick else JOBS_FULL
    with tempfile.TemporaryDirectory(prefix="choreo-soak-") as folder:
        config = ServerConfig(device="cpu", connection_file=Path(folder) / "backend.json", max_queue=MAX_QUEUE,
                              client_timeout=CLIENT_TIMEOUT_S)
        server = start_server_process(config, log_path=Path(folder) / "backend.log")
        try:
            figures = run_soak(server.endpoint, server.token, server.proc.pid, jobs=jobs)
        finally:
            server.stop()
    out = figures.as_dict()
    out.update(max_queue=MAX_QUEUE, client_timeout_s=CLIENT_TIMEOUT_S)
    return out
