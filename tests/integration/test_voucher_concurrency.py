"""50 fans redeem the same voucher at the same instant: exactly one request."""
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import DJSet, Payment, SongRequest, Voucher, utcnow
from app.services.requests import create_batch
from app.services.requests.vouchers import code_for
from tests.payment_support import Fan

FANS = 50
pytestmark = pytest.mark.night(tracks=FANS)


def test_fifty_fans_redeeming_one_voucher_at_once_make_exactly_one_request(app_ctx, night, live_server):
    db.session.get(DJSet, night.set.id).hourly_cap = 1000  # the voucher, not the cap, is what they race for
    db.session.commit()
    batch = create_batch(night.dj.id, None, night.event.public_id, size=1, amount_cents=2000,
                         expires_at=utcnow() + timedelta(hours=2), label=None)
    voucher = db.session.scalar(select(Voucher).where(Voucher.batch_id == batch.id))
    code = code_for(night.event.public_id, voucher.serial, voucher.key_id)
    event, songs = night.event.public_id, [t.public_id for t in night.tracks]
    requests_before = db.session.scalar(select(func.count()).select_from(SongRequest))

    fans = [Fan(live_server) for _ in range(FANS)]
    sheets = [fan.open_sheet(event, song) for fan, song in zip(fans, songs)]
    start = threading.Barrier(FANS)

    def redeem(i: int):
        csrf, key = sheets[i]
        start.wait()  # all at the same instant
        return fans[i].http.post(f"{live_server}/e/{event}/request/{songs[i]}", timeout=60, allow_redirects=False,
                                 data={"csrf_token": csrf, "idempotency_key": key, "voucher": code,
                                       "pay_with": "voucher"})

    with ThreadPoolExecutor(max_workers=FANS) as pool:
        responses = list(pool.map(redeem, range(FANS)))

    made = [r for r in responses if r.status_code == 303]
    refused = [r for r in responses if r.status_code != 303]
    assert len(made) == 1, [r.status_code for r in responses]
    odd = [r for r in refused if r.status_code != 409 or "Code: VOUCHER_USED" not in r.text]
    assert not odd, [(r.status_code, r.text[r.text.find("Code:"):][:30], r.text[-3000:]) for r in odd][:2]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(SongRequest)) == requests_before + 1
    song_request = db.session.scalar(select(SongRequest).where(SongRequest.voucher_id.is_not(None)))
    db.session.refresh(voucher)
    assert song_request.voucher_id == voucher.id and voucher.redeemed_by_device_id == song_request.device_id
    assert db.session.scalar(select(func.count()).select_from(Voucher)) == 1
    assert db.session.scalar(select(func.count()).select_from(Payment).where(
        Payment.created_at > voucher.created_at)) == 0  # no card was involved
