"""Gunicorn settings: `gunicorn -c service/gunicorn.conf.py` (run from the project root).

HOST/PORT (default 127.0.0.1:8000), WEB_CONCURRENCY workers (default 1), THREADS per worker (default 64).
Each worker loads the model and index itself after the fork (preload off: torch and tokenizer threads
do not survive a fork well), so memory grows with WEB_CONCURRENCY; threads share one worker's copy.
"""
import os
import shutil
import tempfile

wsgi_app = "service:create_app()"

_host, _port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
bind = f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"  # [::1] for IPv6 hosts
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
# Concurrent questions share one encode (service/batching.py). More threads than QA_MAX_WAITING (default 1) plus
# a batch (16): a question beyond the bound must reach the app to be refused at once with 503; with fewer threads
# it would wait unseen, without limit, in gunicorn's own queue.
threads = int(os.environ.get("THREADS", "64"))
worker_class = "gthread"
preload_app = False
# A worker must finish booting (loading the model and index) within `timeout` or the arbiter kills it.
# gthread workers keep signalling while a request runs, so this does not cut off slow answers.
timeout = 120
graceful_timeout = 30
keepalive = 5
accesslog = None  # the app writes one JSON line per request instead (service/requests_log.py)

# /metrics adds up every worker's samples (prometheus_client's multiprocess mode, service/metrics.py): they are
# kept in a folder of this arbiter's own, set before any worker imports prometheus_client. A reload (HUP) keeps it.
_METRICS_PREFIX = f"qa-metrics-{os.getpid()}-"
if not os.path.basename(os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")).startswith(_METRICS_PREFIX):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=_METRICS_PREFIX)


def child_exit(server, worker):  # noqa: ARG001 (gunicorn's hook signature)
    """A dead worker's gauges (the encoder queue) stop counting; its counters and histograms still add up."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):  # noqa: ARG001
    shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
