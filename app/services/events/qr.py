"""Signed join links for event QR codes.

A join link is /j/<event public id>/<kid>.<signature>: an HMAC-SHA256 of the
event id under the key named by `kid`, so a code cannot be forged or pointed
at another event, and keys can rotate: QR_SIGNING_KEYS lists `kid:secret`
pairs, the first signs new links and all of them still verify (remove a kid
to revoke every poster printed with it). Without QR_SIGNING_KEYS one key,
`k1`, is derived from SECRET_KEY.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import io

import segno
from flask import current_app

SIGNATURE_BYTES = 16  # 128 bits, in 22 URL-safe characters


def keyring() -> dict[str, bytes]:
    configured = current_app.config.get("QR_SIGNING_KEYS", "")
    keys: dict[str, bytes] = {}
    for entry in filter(None, (e.strip() for e in configured.split(","))):
        kid, _, secret = entry.partition(":")
        keys[kid] = secret.encode()
    if not keys:
        derived = hmac.new(current_app.config["SECRET_KEY"].encode(), b"qr-signing-key:k1", hashlib.sha256)
        keys["k1"] = derived.digest()
    return keys


def _signature(key: bytes, event_public_id: str) -> str:
    mac = hmac.new(key, f"join:{event_public_id}".encode(), hashlib.sha256).digest()[:SIGNATURE_BYTES]
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def sign(event_public_id: str) -> str:
    kid, key = next(iter(keyring().items()))
    return f"{kid}.{_signature(key, event_public_id)}"


def verify(event_public_id: str, token: str) -> bool:
    kid, _, signature = token.partition(".")
    key = keyring().get(kid)
    if key is None or not signature:
        return False
    # Bytes: compare_digest refuses str with non-ASCII characters (a forged link is no 500).
    return hmac.compare_digest(_signature(key, event_public_id).encode(), signature.encode())


def qr_svg(data: str, scale: int = 8, title: str = "QR code to join the event") -> str:
    """An SVG QR code (error correction M: survives a little wear on a poster)."""
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="svg", scale=scale, border=4, xmldecl=False,
                                     svgns=True, title=title, dark="#000", light="#fff")
    return buffer.getvalue().decode()
