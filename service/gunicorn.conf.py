"""Gunicorn settings: `gunicorn -c service/gunicorn.conf.py` (run from the project root).

HOST/PORT (default 127.0.0.1:8000), WEB_CONCURRENCY workers (default 1), THREADS per worker (default 16).
Each worker loads the model and index itself after the fork (preload off: torch and tokenizer threads
do not survive a fork well), so memory grows with WEB_CONCURRENCY; threads share one worker's copy.
"""
import os

wsgi_app = "service:create_app()"

_host, _port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
bind = f"[{_host}]:{_port}" if ":" in _host else f"{_host}:{_port}"  # [::1] for IPv6 hosts
workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
threads = int(os.environ.get("THREADS", "16"))  # concurrent questions share one encode (service/batching.py)
worker_class = "gthread"
preload_app = False
# A worker must finish booting (loading the model and index) within `timeout` or the arbiter kills it.
# gthread workers keep signalling while a request runs, so this does not cut off slow answers.
timeout = 120
graceful_timeout = 30
keepalive = 5
accesslog = "-"
