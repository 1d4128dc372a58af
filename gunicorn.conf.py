"""gunicorn settings for `make run` and production.

Server model for the live queue: gthread, a thread per open WebSocket.

flask-sock (simple-websocket) can run under gthread, gevent or eventlet. We
keep gthread, the model the rest of the app already runs under, because:

- It is plain threads: psycopg 3, SQLite, redis-py and RQ need no monkey
  patching, and a slow database call never stalls every socket of a process.
- A socket costs two threads (the handler, which sends, and
  simple-websocket's reader), each an 8 MB *virtual* stack of which a few
  tens of KB are touched; fans' sockets refuse permessage-deflate (app/live/routes.py),
  which would add ~300 KB of zlib state per socket. bench/live_fanout.py
  measures the resident memory; see docs/live.md for the figures at 1,000
  sockets.
- The hub (app/live/hub.py) renders each change once per process and only
  hands finished text to the handlers, so the per-socket work is a queue put
  and a send.

So `threads` bounds the open sockets per worker (plus ordinary requests):
WEB_CONCURRENCY x WEB_THREADS must exceed the expected sockets. The defaults
(2 workers x 700 threads) hold 1,000 fans with room for HTTP traffic.
"""
import os
import signal

bind = os.environ.get("BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "700"))
# Every socket is a connection; leave room for kept-alive HTTP ones.
worker_connections = threads + 200
timeout = 60
graceful_timeout = 10
accesslog = "-"
access_log_format = 'ts=%(t)s method=%(m)s path="%(U)s" status=%(s)s bytes=%(B)s ms=%(M)s request_id=%({x-request-id}o)s'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_worker_init(worker):
    """On SIGTERM (a deploy or restart) close this worker's sockets at once
    with 1012 "service restart", so clients reconnect to the new workers
    instead of waiting out the graceful timeout."""
    from app.live.hub import hub_for

    app = worker.wsgi
    graceful_exit = worker.handle_exit

    def on_term(sig, frame):
        hub_for(app).shutdown()
        graceful_exit(sig, frame)

    signal.signal(signal.SIGTERM, on_term)
