"""Vouchers: a DJ's batches of signed codes, each paying for one request.

A code is `KID-SERIAL-SIGNATURE`: SERIAL is 8 random Crockford base32
characters, SIGNATURE 10 more, the first 50 bits of an HMAC-SHA256 of the
event's id and the serial under the QR keyring's key KID (the keys that
sign join links, events/qr.py). So a code cannot be made up, and a code for
another event does not verify here; removing a kid from QR_SIGNING_KEYS
revokes every card printed with it. Only the code's sha256 is stored; the
cards are printed again from (event, serial, kid).

Redemption (`redeem_voucher`) follows a paid request's rules under the same
set lock (open set, duplicates, 3 active, the hourly cap), and the voucher
is taken by one conditional UPDATE ... WHERE redeemed_at IS NULL: however
many fans redeem one voucher at once, one request is made. A vetoed or
expired voucher request gives the voucher back (`give_back_voucher`): the
used row keeps the history and a fresh row carries the code on.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError

from ...extensions import db
from ...models import DJSet, Event, GuestDevice, SongRequest, Track, Voucher, VoucherBatch, utcnow
from ...models.vouchers import MAX_BATCH
from ..common import idempotency
from ..common.errors import DomainError, NotFound
from ..common.locks import lock_set
from ..common.text import rands
from ..events import own_event, qr
from ..events.manage import CLOSED_EVENT_STATUSES
from ..live.publish import publish_after_commit
from ..payments.checkout import refuse_if_sanctioned
from .fulfil import shoutout_status_for
from .rules import RequestRefused, check_attempt_rate, check_capacity_and_duplicates, check_open
from .states import move_request

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TYPO = str.maketrans({"O": "0", "I": "1", "L": "1"})
SERIAL_CHARS = 8
SIGNATURE_CHARS = 10  # 50 bits
GIVEN_BACK_PREFIX = "given-back:"


class VoucherRefused(RequestRefused):
    """A voucher that cannot pay: forged, another event's, expired, used."""


class BatchRefused(DomainError):
    status = 422

    def __init__(self, field: str, message: str):
        super().__init__("VOUCHER_BATCH_REFUSED", message)
        self.field = field


# --- codes -------------------------------------------------------------------------------------

def _canonical_kid(kid: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", kid.upper())


def _b32(data: bytes, chars: int) -> str:
    bits = int.from_bytes(data, "big")
    total = len(data) * 8
    return "".join(_CROCKFORD[(bits >> (total - 5 * (i + 1))) & 31] for i in range(chars))


def _signature(key: bytes, event_public_id: str, serial: str) -> str:
    mac = hmac.new(key, f"voucher:{event_public_id}:{serial}".encode(), hashlib.sha256).digest()
    return _b32(mac[:8], SIGNATURE_CHARS)


def code_for(event_public_id: str, serial: str, kid: str) -> str | None:
    """The code printed on a voucher's card (None once its key was removed from the keyring)."""
    key = qr.keyring().get(kid)
    if key is None:
        return None
    return f"{_canonical_kid(kid)}-{serial}-{_signature(key, event_public_id, serial)}"


def code_hash(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@dataclass(frozen=True)
class ParsedCode:
    kid: str  # as in the keyring
    serial: str
    signature: str

    @property
    def code(self) -> str:
        return f"{_canonical_kid(self.kid)}-{self.serial}-{self.signature}"


def parse_code(raw: str) -> ParsedCode | None:
    """A typed or scanned code: case, spaces, dashes and O/I/L for 0/1 forgiven. None: not a code
    (or its key is unknown)."""
    text = re.sub(r"[^A-Za-z0-9]", "", raw or "").upper()
    if len(text) <= SERIAL_CHARS + SIGNATURE_CHARS or len(text) > 64:
        return None
    tail = text[-(SERIAL_CHARS + SIGNATURE_CHARS):].translate(_TYPO)
    if any(c not in _CROCKFORD for c in tail):
        return None
    kid_text = text[:-(SERIAL_CHARS + SIGNATURE_CHARS)]
    kid = next((k for k in qr.keyring() if _canonical_kid(k) == kid_text), None)
    if kid is None:
        return None
    return ParsedCode(kid, tail[:SERIAL_CHARS], tail[SERIAL_CHARS:])


INVALID_MESSAGE = "That voucher code isn't valid. Check the code on the card and try again."


def check_voucher(event: Event, raw: str) -> Voucher:
    """The voucher a code names, if it can pay at this event now (read only); else VoucherRefused."""
    parsed = parse_code(raw)
    if parsed is None:
        raise VoucherRefused("VOUCHER_INVALID", INVALID_MESSAGE, status=403)
    voucher = db.session.scalar(select(Voucher).where(Voucher.code_hash == code_hash(parsed.code)))
    if voucher is not None and voucher.event_id != event.id:
        other = db.session.get(Event, voucher.event_id) if voucher.event_id else None
        where = f" ({other.name})" if other is not None else ""
        raise VoucherRefused("VOUCHER_OTHER_EVENT",
                             f"That voucher is for another event{where}, so it can't pay for a song here.",
                             status=403)
    key = qr.keyring()[parsed.kid]
    expected = _signature(key, event.public_id, parsed.serial)
    if voucher is None or not hmac.compare_digest(expected.encode(), parsed.signature.encode()):
        raise VoucherRefused("VOUCHER_INVALID", INVALID_MESSAGE, status=403)
    _refuse_if_spent(voucher, utcnow())
    return voucher


def _refuse_if_spent(voucher: Voucher, now: datetime) -> None:
    if voucher.redeemed_at is not None:
        raise VoucherRefused("VOUCHER_USED", "That voucher has already been used for a request.")
    if voucher.expires_at is not None and voucher.expires_at <= now:
        raise VoucherRefused("VOUCHER_EXPIRED", "That voucher has expired, so it can't pay for a request any more.",
                             status=410)


# --- the DJ's batches --------------------------------------------------------------------------

def most_a_voucher_can_be_worth(event: Event) -> int:
    """Up to a set's base price: the highest over the event's sets still to come or live, else the DJ's default."""
    prices = [s.base_price_cents for s in event.sets if s.status != "ended"]
    return max(prices) if prices else event.dj.default_price_cents


BATCH_KEY_MESSAGES = idempotency.Messages(
    mismatch="This form was already sent with other details. Open the vouchers page again to make more.",
    in_progress="Those vouchers are still being made. Wait a moment and reload.",
)


def create_batch(dj_id: int, user_id: int | None, event_public_id: str, *, size: int, amount_cents: int,
                 expires_at: datetime, label: str | None, key: str | None = None) -> VoucherBatch:
    """`size` vouchers worth `amount_cents` each for one of the DJ's events, valid until `expires_at`;
    one batch per form `key` (a double tap makes one)."""
    event = own_event(dj_id, event_public_id)
    if event.status in CLOSED_EVENT_STATUSES:
        raise BatchRefused("_form", "This event is over, so it can't have new vouchers.")
    if not 1 <= size <= MAX_BATCH:
        raise BatchRefused("size", f"Make from 1 to {MAX_BATCH} vouchers at a time.")
    most = most_a_voucher_can_be_worth(event)
    if not 0 < amount_cents <= most:
        raise BatchRefused("value", f"A voucher can be worth up to a request's price at this event, {rands(most)}.")
    if expires_at <= utcnow():
        raise BatchRefused("expires_at", "Choose an expiry in the future.")

    def create() -> str:
        kid = next(iter(qr.keyring()))
        batch = VoucherBatch(event_id=event.id, dj_id=dj_id, created_by_id=user_id, size=size,
                             amount_cents=amount_cents, label=label or None, expires_at=expires_at)
        db.session.add(batch)
        db.session.flush()
        serials: set[str] = set()
        while len(serials) < size:
            serials.add(_b32(secrets.token_bytes(5), SERIAL_CHARS))
        db.session.add_all(
            Voucher(code_hash=code_hash(code_for(event.public_id, serial, kid)), amount_cents=amount_cents,
                    dj_id=dj_id, event_id=event.id, batch_id=batch.id, serial=serial, key_id=kid,
                    created_by_id=user_id, expires_at=expires_at)
            for serial in sorted(serials))
        db.session.flush()
        return batch.public_id

    if key:
        fingerprint = idempotency.fingerprint({"event": event.public_id, "size": size, "amount": amount_cents,
                                               "expires_at": expires_at, "label": label})
        public_id = idempotency.run_once(f"dj:{dj_id}", "create-vouchers", key, fingerprint,
                                         lambda: (303, {"id": create()}), BATCH_KEY_MESSAGES,
                                         store_refusals=False).body["id"]
    else:
        public_id = create()
        db.session.commit()
    return db.session.scalar(select(VoucherBatch).where(VoucherBatch.public_id == public_id))


@dataclass(frozen=True)
class BatchSummary:
    batch: VoucherBatch
    used: int  # redeemed and not given back

    @property
    def left(self) -> int:
        return self.batch.size - self.used


def event_batches(dj_id: int, event_public_id: str) -> tuple[Event, list[BatchSummary]]:
    event = own_event(dj_id, event_public_id)
    batches = db.session.scalars(select(VoucherBatch).where(VoucherBatch.event_id == event.id)
                                 .order_by(VoucherBatch.created_at.desc(), VoucherBatch.id.desc())).all()
    used = dict(db.session.execute(
        select(Voucher.batch_id, func.count()).where(Voucher.event_id == event.id, Voucher.redeemed_at.is_not(None),
                                                     Voucher.given_back_at.is_(None))
        .group_by(Voucher.batch_id)).all())
    return event, [BatchSummary(b, used.get(b.id, 0)) for b in batches]


@dataclass(frozen=True)
class Card:
    number: int
    code: str | None  # None: its signing key was revoked
    used: bool


def batch_cards(dj_id: int, batch_public_id: str) -> tuple[VoucherBatch, list[Card]]:
    """A batch of the DJ's (another DJ's is not found) with each voucher's code, to print."""
    batch = db.session.scalar(select(VoucherBatch).where(VoucherBatch.public_id == batch_public_id,
                                                         VoucherBatch.dj_id == dj_id))
    if batch is None:
        raise NotFound("Those vouchers")
    vouchers = db.session.scalars(select(Voucher).where(Voucher.batch_id == batch.id,
                                                        Voucher.given_back_at.is_(None))
                                  .order_by(Voucher.serial)).all()
    event_public_id = batch.event.public_id
    cards = [Card(i, code_for(event_public_id, v.serial, v.key_id), v.redeemed_at is not None)
             for i, v in enumerate(vouchers, start=1)]
    return batch, cards


# --- redemption ---------------------------------------------------------------------------------

def _existing_redemption(voucher_id: int, device_id: int, track: Track) -> SongRequest | None:
    """The request this fan already made with this voucher for this song (a double tap)."""
    voucher = db.session.get(Voucher, voucher_id)
    if voucher is None or voucher.redeemed_by_device_id != device_id:
        return None
    return db.session.scalar(select(SongRequest).where(SongRequest.voucher_id == voucher_id,
                                                       SongRequest.track_id == track.id))


def redeem_voucher(event: Event, dj_set: DJSet, track: Track, device: GuestDevice, raw_code: str, *,
                   shoutout: str | None) -> SongRequest:
    """Pay for a request with a voucher: the request is made now, or VoucherRefused/RequestRefused."""
    refuse_if_sanctioned(device, None, RequestRefused)
    voucher = None
    try:
        voucher = check_voucher(event, raw_code)
    except VoucherRefused as refusal:
        if refusal.code == "VOUCHER_USED":
            parsed = parse_code(raw_code)
            used = db.session.scalar(select(Voucher.id).where(Voucher.code_hash == code_hash(parsed.code)))
            again = _existing_redemption(used, device.id, track)
            if again is not None:
                return again
        raise
    voucher_id, voucher_cents = voucher.id, voucher.amount_cents
    price = track.price_cents(dj_set.base_price_cents)
    if price > voucher_cents:
        raise VoucherRefused("VOUCHER_TOO_SMALL", f"This voucher is worth {rands(voucher_cents)} and this song costs "
                             f"{rands(price)}. Pick a song up to {rands(voucher_cents)}, or pay by card.")
    check_attempt_rate(device, event.public_id, paying=False)
    # A device row made on this first use is kept, whatever the locked part decides; and the
    # set's lock below must be the transaction's first write (common/locks.py).
    device_id = device.id
    db.session.commit()

    lock_set(dj_set.id)
    db.session.refresh(dj_set)
    try:
        check_open(dj_set, track)
        check_capacity_and_duplicates(dj_set, track, device)
    except RequestRefused:
        db.session.rollback()  # the set's lock goes now, not when the page is rendered
        raise
    now = utcnow()
    taken = db.session.execute(
        update(Voucher)
        .where(Voucher.id == voucher_id, Voucher.redeemed_at.is_(None),
               or_(Voucher.expires_at.is_(None), Voucher.expires_at > now))
        .values(redeemed_at=now, redeemed_by_device_id=device_id)
        .execution_options(synchronize_session=False)
    ).rowcount
    if taken != 1:
        db.session.rollback()
        again = _existing_redemption(voucher_id, device_id, track)
        if again is not None:
            return again
        _refuse_if_spent(db.session.get(Voucher, voucher_id), utcnow())
        raise VoucherRefused("VOUCHER_USED", "That voucher has already been used for a request.")

    song_request = SongRequest(
        set_id=dj_set.id, track_id=track.id, device_id=device_id, user_id=device.user_id, voucher_id=voucher_id,
        amount_cents=price, shoutout=shoutout or None, shoutout_status=shoutout_status_for(shoutout),
    )
    move_request(song_request, "pending")
    db.session.add(song_request)
    try:
        db.session.flush()
    except IntegrityError as err:
        db.session.rollback()  # the voucher is not taken either
        raise RequestRefused("DUPLICATE_REQUEST", "You already have this song in the queue.") from err
    publish_after_commit(event.public_id, "request_created", request=song_request.public_id)
    db.session.commit()
    return song_request


def give_back_voucher(voucher_id: int) -> None:
    """The voucher's request was vetoed or expired: the code can pay again (same transaction as the
    request's move). The used row keeps the history; a fresh row takes the code on."""
    used = db.session.get(Voucher, voucher_id)
    if used is None or used.given_back_at is not None:
        return
    the_hash = used.code_hash
    used.given_back_at = utcnow()
    used.code_hash = GIVEN_BACK_PREFIX + used.public_id
    db.session.flush()  # the code's hash is free before the fresh row takes it
    db.session.add(Voucher(code_hash=the_hash, amount_cents=used.amount_cents, dj_id=used.dj_id,
                           event_id=used.event_id, batch_id=used.batch_id, serial=used.serial, key_id=used.key_id,
                           created_by_id=used.created_by_id, expires_at=used.expires_at))
    db.session.flush()
