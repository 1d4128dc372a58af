from __future__ import annotations

from flask import current_app, jsonify, render_template, send_from_directory
from sqlalchemy import text

from ..extensions import db, limiter, redis_store
from ..services.common import tasks
from . import bp


@bp.get("/healthz")
@limiter.exempt
def healthz():
    """Alive: answers while the process runs, touching nothing else."""
    return jsonify(status="ok")


@bp.get("/readyz")
@limiter.exempt
def readyz():
    """Ready: the database and Redis both answer; 503 names the failing part.

    `background` says who runs the jobs: live workers per queue, whether a
    scheduler holds each queue's lock (delayed jobs: refund backoff, webhook
    redelivery), how many cron schedulers beat. Their absence makes the status
    "degraded" (and names them in `degraded`) but not 503: this web node can
    still serve fans, and a load balancer must not take every node out because
    a worker died. Monitor `degraded`."""
    checks: dict[str, str] = {}
    try:
        db.session.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        db.session.rollback()
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        redis_store.client.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"error: {type(exc).__name__}"
    failing = [name for name, state in checks.items() if state != "ok"]
    body = {"status": "ok" if not failing else "unavailable", "checks": checks, "failing": failing}
    if not failing:
        try:
            background = tasks.background_status()
        except Exception as exc:  # noqa: BLE001 - Redis went away between the two calls
            checks["redis"] = f"error: {type(exc).__name__}"
            body.update(status="unavailable", failing=["redis"])
            return jsonify(body), 503
        degraded = [f"workers:{name}" for name, count in background["workers"].items() if not count]
        degraded += [f"scheduler:{name}" for name, held in background["scheduler"].items() if not held]
        degraded += ["cron"] if not background["cron"] else []
        body.update(background=background, degraded=degraded, status="degraded" if degraded else "ok")
    return jsonify(body), (200 if not failing else 503)


@bp.get("/sw.js")
def service_worker():
    """Served from the root so that its scope covers the whole site."""
    response = send_from_directory(current_app.static_folder, "sw.js", max_age=0)
    response.headers["Service-Worker-Allowed"] = "/"
    response.headers["Cache-Control"] = "no-cache"
    return response


@bp.get("/manifest.webmanifest")
def manifest():
    response = send_from_directory(current_app.static_folder, "manifest.webmanifest")
    response.mimetype = "application/manifest+json"
    return response


@bp.get("/favicon.ico")
@limiter.exempt
def favicon():
    """Browsers ask for it at the root whatever the page links."""
    return send_from_directory(current_app.static_folder, "icons/favicon.ico", max_age=86400)


@bp.get("/offline")
def offline():
    return render_template("core/offline.html")
