"""What the fan's pages show of tips: the tip a payment became, and the
prompt to tip after the fan's own song has played."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from ...extensions import db
from ...models import Payment, Tip, utcnow

# How long after the fan's song played the prompt stays up (unless they tip).
PROMPT_MINUTES = 30


@dataclass(frozen=True)
class TipPrompt:
    """The fan's song just played: "say thanks with a tip"."""

    title: str
    request_public_id: str


def tip_for_payment(payment: Payment) -> Tip | None:
    return db.session.scalar(select(Tip).where(Tip.payment_id == payment.id))


def tip_prompt(my_requests: list) -> TipPrompt | None:
    """The prompt for this fan, from their requests at the event (live.DeviceRequest,
    newest first): their latest song played in a live set in the last
    PROMPT_MINUTES, and no tip started by them since. No query unless one did."""
    now = utcnow()
    played = [item.song_request for item in my_requests
              if item.song_request is not None and item.song_request.status == "played"
              and item.song_request.closed_at is not None
              and now - item.song_request.closed_at < timedelta(minutes=PROMPT_MINUTES)
              and item.song_request.dj_set.status == "live"]
    if not played:
        return None
    latest = max(played, key=lambda r: r.closed_at)
    device_id = latest.device_id
    tipped = db.session.scalar(select(Payment.id).where(
        Payment.device_id == device_id, Payment.purpose == "tip", Payment.set_id == latest.set_id,
        Payment.created_at >= latest.closed_at, Payment.state.in_(("PENDING", "COMPLETED"))).limit(1))
    if tipped is not None:
        return None
    return TipPrompt(latest.track.title, latest.public_id)
