"""gunicorn settings for `make run` and production.

gthread workers: each WebSocket (flask-sock) holds a thread for its life, so
threads per worker bound the open sockets per process. The live-queue work
revisits this with measurements.
"""
import os

bind = os.environ.get("BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "16"))
timeout = 60
graceful_timeout = 10
accesslog = "-"
access_log_format = 'ts=%(t)s method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s ms=%(M)s request_id=%({x-request-id}o)s'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
