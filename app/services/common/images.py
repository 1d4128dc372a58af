"""Uploaded photos: checked by their content, re-encoded, stored by content.

What arrives is never stored as sent. Pillow must recognise it as JPEG, PNG
or WebP from its bytes (the file name and declared type are ignored) and
verify it; an image over MAX_PIXELS is refused before its pixels are decoded
(a decompression bomb: a few KB that decode to gigabytes); the pixels are
then copied into a fresh image (no EXIF, GPS, ICC or text chunks come
along), turned upright as the camera said, shrunk to at most MAX_SIDE px on
the longer side and written as WebP. The file is named by the SHA-256 of
what was written (so it never changes, and is cached for a year) under
UPLOAD_DIR.
"""
from __future__ import annotations

import hashlib
import io
import re
import warnings
from pathlib import Path

from flask import current_app
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import DomainError

MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 1024
# Width x height Pillow may decode: a 40-megapixel camera's photo passes,
# a 50,000 x 50,000 "bomb" (2.5 billion pixels) does not.
MAX_PIXELS = 50_000_000
FORMATS = ("JPEG", "PNG", "WEBP")
STORED_TYPE = "image/webp"
STORED_NAME = re.compile(r"^[0-9a-f]{32}\.webp$")


class PhotoRefused(DomainError):
    status = 422

    def __init__(self, message: str):
        super().__init__("PHOTO_REFUSED", message)


def clean_photo(data: bytes) -> bytes:
    """The photo as we store it (WebP, upright, at most MAX_SIDE px, no metadata), or PhotoRefused."""
    if len(data) > MAX_BYTES:
        raise PhotoRefused("That photo is larger than 5 MB. Choose a smaller one.")
    if not data:
        raise PhotoRefused("That file is empty.")
    not_a_photo = PhotoRefused("That file is not a JPEG, PNG or WebP photo.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=FORMATS) as probe:
                _refuse_bombs(probe.size)
                probe.verify()  # the whole file's structure, checksums included
            with Image.open(io.BytesIO(data), formats=FORMATS) as image:
                _refuse_bombs(image.size)
                image.load()
                upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb() from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as error:
        raise not_a_photo from error
    mode = "RGBA" if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info else "RGB"
    pixels = upright.convert(mode)
    clean = Image.frombytes(mode, pixels.size, pixels.tobytes())  # pixels only: no metadata survives
    clean.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    clean.save(out, "WEBP", quality=82, method=4)
    return out.getvalue()


def _bomb() -> PhotoRefused:
    return PhotoRefused("That image is too large to open (over 50 megapixels). Choose a smaller one.")


def _refuse_bombs(size: tuple[int, int]) -> None:
    if size[0] * size[1] > MAX_PIXELS:
        raise _bomb()


def store_clean_photo(cleaned: bytes) -> str:
    """Store what clean_photo returned; returns its file name under UPLOAD_DIR."""
    name = hashlib.sha256(cleaned).hexdigest()[:32] + ".webp"
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    if not target.exists():
        temporary = folder / f".{name}.tmp"
        temporary.write_bytes(cleaned)
        temporary.replace(target)
    return name


def upload_dir() -> Path:
    return Path(current_app.config["UPLOAD_DIR"])


def stored_photo_path(name: str) -> Path | None:
    """The stored file for a name from a URL, or None (anything but our own names is refused)."""
    if not STORED_NAME.match(name):
        return None
    path = upload_dir() / name
    return path if path.is_file() else None
