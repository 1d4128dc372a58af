"""Absolute links: for what leaves the page (mails, printed QR codes and voucher
cards, share links and their previews)."""
from __future__ import annotations

from flask import current_app, has_request_context, request

DEVELOPMENT_BASE_URL = "http://127.0.0.1:5000"


def absolute_url(path: str) -> str:
    """`path` on PUBLIC_BASE_URL, else on this request's host, else on the
    development server (a job has no request: production must set
    PUBLIC_BASE_URL, and refuses to start without it)."""
    base = current_app.config.get("PUBLIC_BASE_URL") or (request.host_url if has_request_context() else "")
    return (base or DEVELOPMENT_BASE_URL).rstrip("/") + path
