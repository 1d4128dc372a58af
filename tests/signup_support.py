"""Helpers for the sign-up tests: forms, stored mail, and crafted images."""
from __future__ import annotations

import io
import re
import struct
import zlib

from PIL import Image

from tests.conftest import csrf_token_from
from tests.factories import PASSWORD

LINK_RE = re.compile(r"(https?://\S+/confirm/\S+)")


def register(client, role: str, email: str, **overrides):
    token = csrf_token_from(client.get("/register").get_data(as_text=True))
    form = {"role": role, "display_name": "Someone", "email": email, "password": PASSWORD,
            "password_confirm": PASSWORD, "csrf_token": token, **overrides}
    return client.post("/register", data=form)


def dj_form(client, **overrides) -> dict:
    token = csrf_token_from(client.get("/account/profile").get_data(as_text=True))
    return {"csrf_token": token, "stage_name": "DJ Nandi", "genres": ["Amapiano", "House"], "tags": "vinyl, 90s",
            "city": "Durban", "bio": "Sunsets and deep cuts.", "hourly_rate": "1500", **overrides}


def venue_form(client, **overrides) -> dict:
    token = csrf_token_from(client.get("/account/profile").get_data(as_text=True))
    return {"csrf_token": token, "name": "The Rooftop", "address": "1 Long St", "city": "Cape Town",
            "latitude": "-33.92", "longitude": "18.42", "capacity": "250", "contact": "Lee 021 555 0100",
            **overrides}


def confirmation_link(messages) -> str:
    assert messages, "no mail was stored"
    text = messages[-1].get_body(preferencelist=("plain",)).get_content()  # the plain text beside the HTML
    match = LINK_RE.search(text)
    assert match, text
    return match.group(1)


def image_bytes(fmt: str = "JPEG", size=(2000, 1500), gps: bool = False, mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, (200, 40, 90) if mode == "RGB" else (200, 40, 90, 128))
    out = io.BytesIO()
    kwargs = {}
    if gps:
        exif = Image.Exif()
        exif[0x010F] = "PhoneMaker"
        gps_ifd = exif.get_ifd(0x8825)
        gps_ifd.update({1: "S", 2: (26.0, 12.0, 15.0), 3: "E", 4: (28.0, 2.0, 30.0)})
        kwargs["exif"] = exif.tobytes()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(side: int = 50_000) -> bytes:
    """A valid PNG header for a side x side picture with a few bytes of data: 2.5 billion pixels to decode."""
    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"\x00" * 1024))
            + _chunk(b"IEND", b""))
