"""gunicorn settings for `make run` and production.

Server model for the live queue: gthread, a thread per open WebSocket
(WEB_WORKER_CLASS=gthread, the default); WEB_WORKER_CLASS=gevent runs the
same app on gevent's worker (gevent is not in requirements.txt: install it
to use it). Both were measured (bench/live_fanout.py; docs/live.md, "Server
model", has the figures) and gthread stays the default:

- It is plain threads: psycopg 3, SQLite, redis-py and RQ need no monkey
  patching, and nothing CPU-bound in a request (argon2 at sign-in, a big
  page's render) stalls every socket of the worker, as it would in gevent's
  one thread. Under gevent psycopg 3 does cooperate (it notices the patched
  `select` and waits through it), and the socket tests pass on both databases.
- Since the render thread writes the pushes into the sockets itself
  (app/live/hub.py), a change wakes no handler thread, so the threads cost
  what gevent's greenlets cost per change; at 1,000 sockets the two
  delivered alike on this 2-core machine, gevent with less memory.
- A socket costs two threads (the handler, which sends what the render
  thread could not, and simple-websocket's reader), each an 8 MB *virtual*
  stack of which a few tens of KB are touched; fans' sockets refuse
  permessage-deflate (app/live/routes.py), which would add hundreds of KB
  of zlib state per socket.

So `threads` bounds the open sockets per worker (plus ordinary requests);
under gevent `worker_connections` (WEB_CONNECTIONS) does.
A worker never gives sockets more than WEB_THREADS - LIVE_HTTP_THREADS of
its threads (app/live/hub.py refuses the next with 1013 "try again later";
post_worker_init below tells the app the thread count), so plain HTTP always
finds a thread however many sockets are opened, and one client address holds
at most LIVE_SOCKETS_PER_ADDRESS sockets across the workers (docs/live.md,
"Caps"). The defaults (2 workers x 700 threads, 100 kept for HTTP) hold
1,200 fans' sockets; a node for more raises WEB_THREADS (5,000 sockets:
2 x 2,700 measured) or runs gevent.
"""
import html
import logging
import os
import select
import signal
import tempfile
import threading
import time

from gunicorn import glogging, util
from pythonjsonlogger.json import JsonFormatter

# Metrics (app/services/common/metrics.py): every worker writes its figures to
# this directory, set here before prometheus_client is imported (the workers
# inherit it; the same default as the app's, which this file must not import).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR",
                      os.path.join(os.path.dirname(os.path.abspath(__file__)), "instance", "metrics"))
os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
from prometheus_client import multiprocess  # noqa: E402

bind = os.environ.get("BIND", "127.0.0.1:5000")
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gthread (the default) or gevent: docs/live.md, "Server model", has the
# measurements of both.
worker_class = os.environ.get("WEB_WORKER_CLASS", "gthread")
if worker_class not in ("gthread", "gevent"):
    raise SystemExit(f"WEB_WORKER_CLASS must be gthread or gevent, not {worker_class!r}")
GEVENT = worker_class == "gevent"
threads = int(os.environ.get("WEB_THREADS", "700"))
# Every socket is a connection; leave room for kept-alive HTTP ones. Under
# gevent a connection is a greenlet, not a thread, and this is the worker's
# only bound (WEB_CONNECTIONS, default 3,000).
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "3000")) if GEVENT else threads + 200
timeout = 60
# How long an idle kept-alive connection stays open (gunicorn's default is 2 s).
# Behind nginx it must outlast nginx's own idle timeout for its upstream
# connections (deploy/nginx.conf: keepalive_timeout 4s): otherwise gunicorn may
# close a connection at the instant nginx sends a request on it, and nginx
# retries only idempotent requests, so a vote or a checkout would get a 502.
keepalive = int(os.environ.get("WEB_KEEPALIVE", "5"))
# The longest request line gunicorn takes (its maximum; the default is 4094):
# a search URL with many genre filters fits. Longer lines get a bare 400.
limit_request_line = 8190
# Long enough for a reload's hand-over (below): the new workers' start plus
# a paced close of the old workers' sockets.
graceful_timeout = 30
accesslog = "-"
access_log_format = "%(m)s %(U)s %(s)s"  # the access line's msg; its fields are added below
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket (for `gunicornc`): one per instance, named after
# the addresses it binds (see on_starting), never gunicorn's default, one fixed
# path in the home directory that a second instance would take over and
# remove when it stops. GUNICORN_CONTROL_SOCKET names it outright.
CONTROL_SOCKET = os.environ.get("GUNICORN_CONTROL_SOCKET", "")



class GunicornJsonFormatter(JsonFormatter):
    """gunicorn's own lines (master, workers, access) as JSON lines with the
    app's fields (app/logs.py): ts, level, logger, msg, exc; an access line
    adds method, path, status, bytes, ms and the response's request_id.

    Defined here rather than imported from app/: the master must not import
    the app, or workers started by a reload (SIGHUP) would run the old code.
    An access record's args hold every request header (cookies among them):
    only the fields named here are written."""

    def add_fields(self, log_data, record, message_dict):
        log_data["ts"] = (time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
                          + f".{int(record.msecs):03d}Z")
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["msg"] = record.message
        atoms = record.args if record.name == "gunicorn.access" and isinstance(record.args, dict) else None
        if atoms is not None:
            status = str(atoms["s"])
            log_data.update(method=atoms["m"], path=atoms["U"].replace('\\"', '"'),
                            status=int(status) if status.isdigit() else status,
                            bytes=atoms["B"] if isinstance(atoms["B"], int) else None, ms=atoms["M"])
            if atoms["{x-request-id}o"] != "-":
                log_data["request_id"] = atoms["{x-request-id}o"]
        for name, field in (("exc_info", "exc"), ("stack_info", "stack")):
            if message_dict.get(name):
                log_data[field] = message_dict[name]


class LineHandler(logging.StreamHandler):
    """A StreamHandler that writes each line with one write(2) of its own,
    formatted before and without the handler's lock. The base class formats
    and writes under the lock, and with hundreds of request threads each
    access line made the others queue for it (py-spy on the home page under
    wrk: 16% of a worker's GIL samples waiting there). A line up to PIPE_BUF
    bytes reaches a pipe (journald, docker) or an O_APPEND file whole in one
    write(2), whatever other threads and processes write beside it; a longer
    one (a traceback) is written under the lock as before."""

    def handle(self, record):
        if not self.filter(record):
            return False
        try:
            data = (self.format(record) + self.terminator).encode("utf-8", "backslashreplace")
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):  # no file descriptor (a test's StringIO)
            return super().handle(record)
        except Exception:
            self.handleError(record)
            return True
        try:
            if len(data) <= select.PIPE_BUF:
                _write_all(fd, data)
            else:
                with self.lock:
                    self.stream.flush()
                    _write_all(fd, data)
        except Exception:
            self.handleError(record)
        return True


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class AccessLogger(glogging.Logger):
    """gunicorn's logger with an access line's atoms cut to those
    GunicornJsonFormatter writes: gunicorn's own puts every request header,
    response header and environ variable in each line's dict."""

    def atoms(self, resp, req, environ, request_time):
        status = resp.status
        if isinstance(status, str):
            status = status.split(None, 1)[0]
        request_id = "-"
        for name, value in resp.headers:
            if name.lower() == "x-request-id":
                request_id = value
                break
        return {"m": environ.get("REQUEST_METHOD"), "U": environ.get("PATH_INFO"), "s": status,
                "B": getattr(resp, "sent", None), "{x-request-id}o": request_id,
                "M": request_time.seconds * 1000 + request_time.microseconds // 1000}


logger_class = AccessLogger
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"json": {"()": GunicornJsonFormatter}},
    "handlers": {
        "stderr": {"()": LineHandler, "formatter": "json", "stream": "ext://sys.stderr"},
        "stdout": {"()": LineHandler, "formatter": "json", "stream": "ext://sys.stdout"},
    },
    "root": {"level": "WARNING", "handlers": ["stderr"]},  # workers replace it with the app's (wsgi.py)
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
    },
}

# Live sockets on a reload (SIGHUP, `systemctl reload`): the old workers keep
# serving their fans until a new worker accepts connections, then close their
# sockets with 1012 "service restart" at HANDOVER_RATE a second each, so the
# fans reconnect (after the client's 1 s backoff) to running workers, a few
# at a time, instead of all at once into workers still starting. On a stop
# (SIGTERM from outside) there is no one to hand over to: close at once.
HANDOVER_RATE = float(os.environ.get("LIVE_HANDOVER_RATE", "150"))
HANDOVER_WAIT_SECONDS = 15.0


# The requests gunicorn refuses itself, before the app sees them (400 on a bad
# request line or header, 414, 431, 501): the same protective headers as the
# app's pages (app/core/http.py) on a page that needs nothing, not even a
# style. gunicorn writes these with util.write_error; the workers, forked from
# this master, call ours.
REFUSAL_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Cache-Control": "no-store",
}
if os.environ.get("APP_ENV") == "production":
    REFUSAL_HEADERS["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"


def write_refusal(sock, status_int, reason, mesg):
    body = (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(reason)}</title>"
            f"</head><body><h1>{html.escape(reason)}</h1><p>{html.escape(mesg)}</p></body></html>").encode()
    head = "".join(f"{name}: {value}\r\n" for name, value in REFUSAL_HEADERS.items())
    util.write_nonblock(sock, (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n{head}"
                               f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body)


util.write_error = write_refusal


def control_socket_path(binds: list[str]) -> str:
    """The control socket of the instance bound to `binds`: in the runtime
    directory, named after the addresses (two instances cannot share one)."""
    runtime = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    slug = "_".join("".join(c if c.isalnum() or c in ".-" else "-" for c in b) for b in binds)[:80]
    return os.path.join(runtime, f"bmm-gunicorn-{slug}.ctl")


def on_starting(server):
    """In the master, before it binds: the bind addresses are final here
    (BIND, or --bind on the command line), so the socket path is named now."""
    server.cfg.set("control_socket", CONTROL_SOCKET or control_socket_path(server.cfg.bind))


def _marker(master_pid: int, kind: str) -> str:
    return os.path.join(tempfile.gettempdir(), f"bmm-gunicorn-{master_pid}.{kind}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _reload_age(master_pid: int) -> int:
    """The age of the last worker started before the latest reload (-1: no reload yet)."""
    try:
        with open(_marker(master_pid, "reload")) as f:
            return int(f.read() or -1)
    except (OSError, ValueError):
        return -1


def _newer_worker_ready(master_pid: int, age: int) -> bool:
    prefix = os.path.basename(_marker(master_pid, "ready."))
    for name in os.listdir(tempfile.gettempdir()):
        if name.startswith(prefix) and name[len(prefix):].isdigit() and int(name[len(prefix):]) > age:
            return True
    return False


def on_reload(server):
    """In the master, on SIGHUP, before it starts the new workers: workers up
    to this age are the old generation. (Ages, not times: a worker still
    starting when the signal came is old too.)"""
    _write(_marker(server.pid, "reload"), str(server.worker_age))


def child_exit(server, worker):
    # A dead worker's live gauges (its open sockets) stop counting; its counters stay in the totals.
    multiprocess.mark_process_dead(worker.pid)
    try:
        os.unlink(_marker(server.pid, f"ready.{worker.age}"))
    except OSError:
        pass


def on_exit(server):
    prefix = os.path.basename(_marker(server.pid, ""))
    for name in os.listdir(tempfile.gettempdir()):
        if name.startswith(prefix):
            try:
                os.unlink(os.path.join(tempfile.gettempdir(), name))
            except OSError:
                pass


def _warm_static(static, app):
    """Compress the static text (app/core/static.py) at the thread's normal
    priority. Never renice it: the thread holds the worker's GIL between
    files, and a thread at nice 19 on a busy machine held it while the
    scheduler left it waiting, so every request of the worker stalled behind
    it (measured with the machine's cores busy: the warm-up took 186 s instead
    of 4 s, and a thread beside it paused up to 1 s at a time; a live socket's
    handshake through nginx timed out after 10 s in CI). Brotli lets go of
    the GIL while it compresses, so requests run beside it."""
    static.warm(app)


def post_worker_init(worker):
    """This worker accepts connections from now on (a reload's old workers
    wait for that), the app learns its thread count (the live sockets'
    limit) and starts compressing its static text, and on SIGTERM it closes its live sockets: handed over on a
    reload, at once on a stop.

    The signal handler runs in the main thread and may be re-entered: a stop
    sends SIGTERM twice within milliseconds (pkill or systemd, then the
    master), and a second handler that waited for a lock the first one held
    would hang the worker until the master kills it. So it takes no lock: it
    only starts a thread that closes the sockets, once."""
    from app.core import static
    from app.live.hub import hub_for

    app = worker.wsgi
    # What bounds the worker's concurrent requests and sockets (threads; under
    # gevent its connections): the live hub keeps LIVE_HTTP_THREADS of them for HTTP.
    app.config["WEB_THREADS"] = worker.cfg.worker_connections if GEVENT else worker.cfg.threads
    # The static text compressed before the first visitor asks (app/core/static.py): beside
    # the requests (brotli lets go of the GIL), so the worker is ready no later for it.
    # (Under gevent in a real thread of gevent's pool: a greenlet would block the worker's loop.)
    if GEVENT:
        import gevent

        gevent.get_hub().threadpool.spawn(_warm_static, static, app)
    else:
        threading.Thread(target=_warm_static, args=(static, app), name="static-warm", daemon=True).start()
    _write(_marker(worker.ppid, f"ready.{worker.age}"), str(os.getpid()))
    graceful_exit = worker.handle_exit
    closing = []  # a list append is atomic; no lock in a signal handler

    def close_sockets():
        hub = hub_for(app)
        reload_age = _reload_age(worker.ppid)
        if worker.age <= reload_age:  # the old generation of a reload: hand over to the new one
            deadline = time.time() + HANDOVER_WAIT_SECONDS
            while not _newer_worker_ready(worker.ppid, reload_age) and time.time() < deadline:
                time.sleep(0.05)
            hub.drain(HANDOVER_RATE)
        hub.shutdown()

    def on_term(sig, frame):
        if not closing:
            closing.append(sig)
            if GEVENT:  # the handler runs in gevent's loop, which must not wait for a thread's start
                import gevent

                gevent.spawn(close_sockets)
            else:
                threading.Thread(target=close_sockets, name="live-shutdown", daemon=True).start()
        graceful_exit(sig, frame)

    signal.signal(signal.SIGTERM, on_term)
