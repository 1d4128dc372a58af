"""A fan's history across events ("My requests"): every request and tip of
their devices, newest first, with where each stands; a payment's receipt;
and the public "my song got played" card.

Whose: an `Owner` is the device the browser carries and, for a signed-in
fan, every device linked to the account (and payments made as the account).
Nothing here is found by anyone else: a payment or request of another owner
is "not found", never "forbidden".

What is listed: charges that went through (`completed_at` set: paid, maybe
refunded since; a checkout never paid is not a request) for a set (requests,
tips, any later purpose), and requests with no charge behind them (paid by a
voucher).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import false, or_, select
from sqlalchemy.orm import joinedload

from ...extensions import db
from ...models import DJSet, Dispute, Event, GuestDevice, Payment, PaymentTransition, Report, SongRequest, Track
from ..accounts.devices import device_ids_of
from ..common.errors import NotFound
from ..live.queue import queue_for_set
from ..payments.disputes import DISPUTABLE_STATES, latest_disputes
from .reports import latest_reports

PAGE_SIZE = 30
WAITING = ("pending", "accepted")


@dataclass(frozen=True)
class Owner:
    device_ids: frozenset[int]
    user_id: int | None = None

    @property
    def anyone(self) -> bool:
        return bool(self.device_ids) or self.user_id is not None

    def owns(self, device_id: int | None, user_id: int | None) -> bool:
        return (device_id is not None and device_id in self.device_ids) or (
            self.user_id is not None and user_id == self.user_id)

    def where(self, device_column, user_column):
        """The SQL condition "this row is the owner's"."""
        mine = device_column.in_(self.device_ids) if self.device_ids else false()
        return or_(mine, user_column == self.user_id) if self.user_id is not None else mine


def owner_for(device: GuestDevice | None, fan_user_id: int | None = None) -> Owner:
    """This browser's device and, for a signed-in fan, every device of the account."""
    ids = {device.id} if device is not None else set()
    if fan_user_id is not None:
        ids.update(device_ids_of(fan_user_id))
    return Owner(frozenset(ids), fan_user_id)


@dataclass
class Item:
    """One line of the history: a request (paid or by voucher) or a tip."""

    at: datetime
    kind: str                     # "request", or the payment's purpose ("tip", ...)
    event: Event
    dj_set: DJSet
    payment: Payment | None
    song_request: SongRequest | None
    track: Track | None
    position: int | None = None   # in the queue, while waiting
    wait_s: int | None = None
    dispute: Dispute | None = None  # the newest
    report: Report | None = None    # the newest by this owner

    @property
    def amount_cents(self) -> int:
        return self.payment.amount_cents if self.payment else self.song_request.amount_cents

    @property
    def status(self) -> str:
        """waiting, playing, played, vetoed, expired (the set ended first), tip,
        refunded (a charge that became no request), or confirming."""
        if self.song_request is not None:
            status = self.song_request.status
            return "waiting" if status in WAITING else status
        if self.kind != "request":
            return self.kind
        return "refunded" if self.refund else "confirming"

    @property
    def refund(self) -> str | None:
        """None, "pending" (asked of the bank, or being retried) or "refunded"."""
        state = self.payment.state if self.payment else None
        if state == "REFUNDED":
            return "refunded"
        return "pending" if state in ("REFUND_PENDING", "REFUND_FAILED") else None

    @property
    def shareable(self) -> bool:
        return self.song_request is not None and self.song_request.status in ("playing", "played")

    @property
    def disputable(self) -> bool:
        return (self.payment is not None and self.payment.state in DISPUTABLE_STATES
                and not (self.dispute is not None and self.dispute.status == "open"))


@dataclass
class Page:
    items: list[Item]
    page: int
    has_more: bool


def history(owner: Owner, page: int = 1, per_page: int = PAGE_SIZE) -> Page:
    """The owner's requests and tips, newest first, a page at a time."""
    if not owner.anyone:
        return Page([], page, False)
    upto = page * per_page + 1
    payments = db.session.scalars(
        select(Payment).where(owner.where(Payment.device_id, Payment.user_id), Payment.completed_at.is_not(None),
                              Payment.set_id.is_not(None))
        .order_by(Payment.created_at.desc(), Payment.id.desc()).limit(upto)).all()
    unpaid = db.session.scalars(
        select(SongRequest).where(owner.where(SongRequest.device_id, SongRequest.user_id),
                                  SongRequest.payment_id.is_(None))
        .order_by(SongRequest.created_at.desc(), SongRequest.id.desc()).limit(upto)).all()
    rows: list[tuple[datetime, Payment | None, SongRequest | None]] = (
        [(p.created_at, p, None) for p in payments] + [(r.created_at, None, r) for r in unpaid])
    rows.sort(key=lambda row: row[0], reverse=True)
    shown = rows[(page - 1) * per_page: page * per_page]
    return Page(_items(owner, shown), page, len(rows) > page * per_page)


def _items(owner: Owner, rows) -> list[Item]:
    payment_ids = [p.id for _, p, _ in rows if p is not None]
    by_payment = {r.payment_id: r for r in db.session.scalars(
        select(SongRequest).where(SongRequest.payment_id.in_(payment_ids)))} if payment_ids else {}
    rows = [(at, p, by_payment.get(p.id) if p is not None else r) for at, p, r in rows]
    requests = [r for _, _, r in rows if r is not None]
    set_ids = {p.set_id if p is not None else r.set_id for _, p, r in rows}
    sets = {s.id: s for s in db.session.scalars(
        select(DJSet).options(joinedload(DJSet.event).joinedload(Event.dj)).where(DJSet.id.in_(set_ids)))}
    track_ids = {p.track_id for _, p, _ in rows if p is not None and p.track_id} | {r.track_id for r in requests}
    tracks = {t.id: t for t in db.session.scalars(select(Track).where(Track.id.in_(track_ids)))} if track_ids else {}
    disputes = latest_disputes(payment_ids)
    reports = latest_reports([r.id for r in requests], owner.device_ids, owner.user_id)
    queues = {}
    for r in requests:
        if r.status in WAITING and r.set_id not in queues:
            _, entries = queue_for_set(sets[r.set_id])
            queues[r.set_id] = {e.song_request.id: e for e in entries}
    items = []
    for at, payment, song_request in rows:
        dj_set = sets[payment.set_id if payment is not None else song_request.set_id]
        track_id = song_request.track_id if song_request is not None else payment.track_id
        entry = queues.get(dj_set.id, {}).get(song_request.id) if song_request is not None else None
        items.append(Item(
            at=at, kind="request" if song_request is not None else payment.purpose, event=dj_set.event,
            dj_set=dj_set, payment=payment, song_request=song_request, track=tracks.get(track_id),
            position=entry.position if entry else None, wait_s=entry.wait_s if entry else None,
            dispute=disputes.get(payment.id) if payment is not None else None,
            report=reports.get(song_request.id) if song_request is not None else None,
        ))
    return items


@dataclass
class Receipt:
    item: Item
    history: list[PaymentTransition]
    disputes: list[Dispute] = field(default_factory=list)

    @property
    def payment(self) -> Payment:
        return self.item.payment

    @property
    def refund_requested_at(self) -> datetime | None:
        return next((t.created_at for t in self.history if t.to_state == "REFUND_PENDING"), None)

    @property
    def refunded_at(self) -> datetime | None:
        return next((t.created_at for t in self.history if t.to_state == "REFUNDED"), None)

    @property
    def refunded_cents(self) -> int:
        return self.payment.amount_cents if self.refunded_at else 0


def owned_payment(owner: Owner, public_id: str) -> Payment:
    payment = db.session.scalar(select(Payment).where(Payment.public_id == public_id))
    if (payment is None or payment.completed_at is None or payment.set_id is None
            or not owner.owns(payment.device_id, payment.user_id)):
        raise NotFound("That receipt")
    return payment


def owned_request(owner: Owner, public_id: str) -> SongRequest:
    song_request = db.session.scalar(select(SongRequest).where(SongRequest.public_id == public_id))
    if song_request is None or not owner.owns(song_request.device_id, song_request.user_id):
        raise NotFound("That request")
    return song_request


def item_for_payment(owner: Owner, payment: Payment) -> Item:
    return _items(owner, [(payment.created_at, payment, None)])[0]


def item_for_request(owner: Owner, song_request: SongRequest) -> Item:
    if song_request.payment_id is not None:
        return item_for_payment(owner, db.session.get(Payment, song_request.payment_id))
    return _items(owner, [(song_request.created_at, None, song_request)])[0]


def receipt(owner: Owner, payment_public_id: str) -> Receipt:
    """A payment's receipt: what it paid for, its ledger history, its disputes."""
    payment = owned_payment(owner, payment_public_id)
    history_rows = list(db.session.scalars(select(PaymentTransition).where(PaymentTransition.payment_id == payment.id)
                                           .order_by(PaymentTransition.seq)))
    disputes = list(db.session.scalars(select(Dispute).where(Dispute.payment_id == payment.id)
                                       .order_by(Dispute.created_at.desc(), Dispute.id.desc())))
    return Receipt(item_for_payment(owner, payment), history_rows, disputes)


@dataclass(frozen=True)
class PlayedSong:
    """What the public "my song got played" card shows: no device, account,
    shout-out or payment, only what the event's public queue showed anyway."""

    public_id: str
    title: str
    artist: str
    event_name: str
    event_public_id: str
    venue_name: str
    dj_name: str
    played_at: datetime
    timezone: str


def played_song(request_public_id: str) -> PlayedSong:
    """A request that was played (or is playing): its public card. Anything else is not found."""
    row = db.session.execute(
        select(SongRequest, Track, Event).join(Track, Track.id == SongRequest.track_id)
        .join(DJSet, DJSet.id == SongRequest.set_id).join(Event, Event.id == DJSet.event_id)
        .options(joinedload(Event.dj))
        .where(SongRequest.public_id == request_public_id, SongRequest.status.in_(("playing", "played")))).first()
    if row is None:
        raise NotFound("That song")
    song_request, track, event = row
    return PlayedSong(
        public_id=song_request.public_id, title=track.title, artist=track.artist, event_name=event.name,
        event_public_id=event.public_id, venue_name=event.venue_name, dj_name=event.dj.stage_name,
        played_at=song_request.playing_at or song_request.closed_at or song_request.created_at,
        timezone=event.timezone,
    )
