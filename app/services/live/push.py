"""Web Push: a fan's phone is told about their requests when the page is closed.

The rules are the in-page ones (notify.py, PRODUCT.md capability 7): your
request reached position 1; it moved more than 3 places; it is playing; it
was vetoed; it was refunded (after a veto, or when the set ended first).

- A device allows it from the page (static/js/push.js): the browser's
  PushManager subscription (endpoint, p256dh, auth) is stored here
  (`subscribe`), and deleted by `unsubscribe` or when the push service says
  it is gone (404/410).
- Every live change of an event (`publish_after_commit`) schedules one scan
  of it (`schedule_scan`; a burst of changes is one scan): what each
  subscribed device's requests look like now is compared with what its push
  record in Redis says it was last told (`bmm:push:<device>`, the same
  atomic swap as the page's), and each change becomes one `Notification`
  row, unique by its dedupe key (`push:<payment>:<kind>:<state>`), so the
  same change is never sent twice, whichever scans see it.
- Each new notification is one RQ job per subscription (`deliver`), retried
  with backoff (PUSH_RETRY_SECONDS, doubling) while the push service fails.
Nothing is scheduled unless the VAPID keys are configured.
"""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import redis
import requests
from flask import current_app
from pywebpush import WebPushException, webpush
from rq import Retry
from sqlalchemy import delete, select, union
from sqlalchemy.exc import IntegrityError

from ...extensions import db, redis_store
from ...models import DJSet, Event, GuestDevice, Notification, Payment, PushSubscription, SongRequest
from ..common import tasks
from ..common.after_commit import after_commit
from ..common.errors import DomainError
from . import notify
from .publish import on_publish
from .queue import requests_by_device
from .state import _toast_items, load_state

SCAN_JOB = "jobs.push.scan_event"
SEND_JOB = "jobs.push.send_notification"
PENDING_KEY = "bmm:push:pending:{}"
PENDING_TTL_SECONDS = 60
SCAN_LOCK_KEY = "bmm:push:scan:{}"
SCAN_LOCK_SECONDS = 30
PUSH_TTL_SECONDS = 15 * 60  # a push older than this is no news any more
GONE = (404, 410)
MAX_SUBSCRIPTIONS_PER_DEVICE = 5

# The in-page notices that are pushed too (PRODUCT.md capability 7's rules). Not "expired"
# (the set ended first): the page says so, and the refund's push follows; a voucher
# comes back at once, which the page says.
PUSHED = ("position", "playing", "vetoed", "refunded")
TITLES = {
    "position_first": "You're next up",
    "moved": "Your request moved",
    "playing": "Playing now",
    "vetoed": "Request declined",
    "refunded": "Refunded",
}


def enabled() -> bool:
    return bool(current_app.config.get("VAPID_PRIVATE_KEY") and current_app.config.get("VAPID_PUBLIC_KEY"))


# -- subscriptions ------------------------------------------------------------------------------

def subscribe(device: GuestDevice, endpoint: str, p256dh: str, auth: str) -> PushSubscription:
    """Store this browser's push subscription for the device (a renewed one replaces the old)."""
    if not enabled():
        raise DomainError("PUSH_UNAVAILABLE", "Notifications are not available here.", status=409)
    found = db.session.scalar(select(PushSubscription).where(PushSubscription.endpoint == endpoint))
    if found is None:
        count = db.session.scalar(select(db.func.count()).select_from(PushSubscription)
                                  .where(PushSubscription.device_id == device.id))
        if count >= MAX_SUBSCRIPTIONS_PER_DEVICE:
            oldest = db.session.scalars(select(PushSubscription).where(PushSubscription.device_id == device.id)
                                        .order_by(PushSubscription.id)).first()
            db.session.delete(oldest)
        found = PushSubscription(endpoint=endpoint)
        db.session.add(found)
    found.device_id, found.p256dh, found.auth, found.failures = device.id, p256dh, auth, 0
    # What the fan's requests look like now is what they know: record it, so
    # the next change is told (the first look at a request announces nothing).
    since = datetime.now(timezone.utc) - timedelta(days=1)
    for event_public_id in db.session.scalars(
            select(Event.public_id).distinct().join(DJSet, DJSet.event_id == Event.id)
            .join(Payment, Payment.set_id == DJSet.id)
            .where(Payment.device_id == device.id, Payment.purpose == "request", Payment.created_at > since)):
        after_commit(schedule_scan, event_public_id)
    db.session.commit()
    return found


def unsubscribe(device: GuestDevice, endpoint: str) -> bool:
    """Forget this browser's subscription (only the device's own)."""
    result = db.session.execute(delete(PushSubscription).where(PushSubscription.endpoint == endpoint,
                                                               PushSubscription.device_id == device.id))
    db.session.commit()
    return bool(result.rowcount)


def is_subscribed(device: GuestDevice | None) -> bool:
    return device is not None and db.session.scalar(
        select(PushSubscription.id).where(PushSubscription.device_id == device.id).limit(1)) is not None


# -- finding what to send -----------------------------------------------------------------------

def publish_hook(event_public_id: str) -> None:
    """Called with every live change: schedule a scan of the event once the transaction commits."""
    if enabled():
        after_commit(schedule_scan, event_public_id)


on_publish(publish_hook)


def schedule_scan(event_public_id: str) -> None:
    """Enqueue one scan of the event unless one is already waiting (the scan
    clears the mark before it reads, so a later change is never missed)."""
    try:
        if redis_store.client.set(PENDING_KEY.format(event_public_id), "1", nx=True, ex=PENDING_TTL_SECONDS):
            tasks.enqueue_now(SCAN_JOB, event_public_id)
    except redis.RedisError:
        current_app.logger.warning("push scan not scheduled for event %s", event_public_id)


def retry() -> Retry:
    base = current_app.config["PUSH_RETRY_SECONDS"]
    return Retry(max=5, interval=[int(min(3600, base * 2**i)) for i in range(5)])


def scan_event(event_public_id: str) -> int:
    """Turn what changed for the event's subscribed devices into notifications
    and queue their sends; returns how many notifications were created.

    Scans of one event run one at a time (a Redis lock), each reading after
    the one before it wrote: two scans reading in one order and recording in
    the other would tell a fan a change backwards."""
    with redis_store.client.lock(SCAN_LOCK_KEY.format(event_public_id), timeout=SCAN_LOCK_SECONDS,
                                 blocking_timeout=SCAN_LOCK_SECONDS):
        redis_store.client.delete(PENDING_KEY.format(event_public_id))
        return _scan(event_public_id)


def _scan(event_public_id: str) -> int:
    event = db.session.scalar(select(Event).where(Event.public_id == event_public_id))
    if event is None:
        return 0
    set_ids = [s.id for s in event.sets]
    if not set_ids:
        return 0
    payers = select(Payment.device_id).where(Payment.set_id.in_(set_ids), Payment.purpose == "request")
    redeemers = select(SongRequest.device_id).where(SongRequest.set_id.in_(set_ids), SongRequest.voucher_id.is_not(None))
    device_ids = set(db.session.scalars(
        select(PushSubscription.device_id).distinct()
        .where(PushSubscription.device_id.in_(union(payers, redeemers)))))
    if not device_ids:
        return 0
    entries = load_state(event).index().by_request
    created: list[Notification] = []
    for device_id, mine in requests_by_device(None, device_ids, set_ids=set_ids).items():
        items = _toast_items(mine, entries)
        by_key = {item.key: (item, seen) for item, (_k, _t, _a, seen) in zip(mine, items)}
        for toast in notify.due_toasts(device_id, items, channel="push"):
            if toast.kind not in PUSHED:
                continue
            key = toast.key.split(":", 1)[0]
            item, seen = by_key[key]
            kind = toast.kind if toast.kind != "position" else ("position_first" if seen.position == 1 else "moved")
            note = _record(device_id, item, kind, toast.text, f"push:{key}:{kind}:{seen.encode()}")
            if note is not None:
                created.append(note)
    for note in created:
        subscription_ids = db.session.scalars(select(PushSubscription.id)
                                              .where(PushSubscription.device_id == note.device_id)).all()
        tasks.enqueue_many(SEND_JOB, [(note.id, sid) for sid in subscription_ids], retry=retry())
    db.session.commit()
    return len(created)


def _record(device_id: int, item, kind: str, text: str, dedupe_key: str) -> Notification | None:
    """One row per change: a second insert of the same key is refused by the unique index."""
    song_request = item.song_request
    note = Notification(device_id=device_id, request_id=song_request.id if song_request else None,
                        kind=kind, body=text[:300], dedupe_key=dedupe_key[:120])
    try:
        with db.session.begin_nested():
            db.session.add(note)
    except IntegrityError:
        return None
    return note


# -- sending ------------------------------------------------------------------------------------

def payload(note: Notification) -> dict:
    """What the service worker shows: title, body, a tag per request (a newer
    notice replaces an older one), and the page a tap opens."""
    event_public_id = None
    if note.request_id is not None:
        event_public_id = db.session.scalar(
            select(Event.public_id).join(DJSet, DJSet.event_id == Event.id)
            .join(SongRequest, SongRequest.set_id == DJSet.id).where(SongRequest.id == note.request_id))
    opens_history = note.kind in ("vetoed", "refunded") or event_public_id is None
    return {"title": TITLES.get(note.kind, "BeatMatchMe"), "body": note.body,
            "tag": f"bmm-request-{note.request_id or note.id}",
            "url": "/me" if opens_history else f"/e/{event_public_id}#my-requests"}


def deliver(notification_id: int, subscription_id: int) -> str:
    """Send one notification to one subscription. A push service's 404/410
    deletes the subscription; any other failure raises, for RQ to retry."""
    subscription = db.session.get(PushSubscription, subscription_id)
    note = db.session.get(Notification, notification_id)
    if subscription is None or note is None:
        return "gone"
    config = current_app.config
    try:
        webpush(
            subscription_info={"endpoint": subscription.endpoint,
                               "keys": {"p256dh": subscription.p256dh, "auth": subscription.auth}},
            data=json.dumps(payload(note)),
            vapid_private_key=config["VAPID_PRIVATE_KEY"],
            vapid_claims={"sub": config["VAPID_SUBJECT"]},
            ttl=PUSH_TTL_SECONDS, timeout=10, headers={"Urgency": "high"},
        )
    except WebPushException as exc:
        status = exc.response.status_code if exc.response is not None else None
        if status in GONE:
            db.session.delete(subscription)
            db.session.commit()
            current_app.logger.info("push subscription %s gone (%s): deleted", subscription_id, status)
            return "deleted"
        _failed(subscription, f"push service answered {status}")
        raise
    except requests.RequestException as exc:
        _failed(subscription, f"push service unreachable: {exc.__class__.__name__}")
        raise
    now = datetime.now(timezone.utc)
    subscription.failures, subscription.last_success_at = 0, now
    note.pushed_at = now
    db.session.commit()
    return "sent"


def _failed(subscription: PushSubscription, why: str) -> None:
    subscription.failures = (subscription.failures or 0) + 1
    db.session.commit()
    current_app.logger.warning("push to subscription %s failed (%s); RQ retries", subscription.id, why)
