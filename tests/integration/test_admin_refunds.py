"""The refund approval queue and the disputes queue (issue 13, items 3 and 4):
an admin's refund needs a reason, and above ADMIN_REFUND_APPROVAL_CENTS a
second, different admin's approval before the refund path is started; a
dispute is refunded or rejected with a reason the fan then reads. Every
write audited, every refund started exactly once."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.extensions import db
from app.models import AuditLog, Dispute, Payment, PaymentTransition, RefundRequest, Tip, User, utcnow
from app.services import admin
from app.services.common import tasks
from app.services.common.errors import DomainError
from app.services.payments import record_transition
from app.services.payments.disputes import file_dispute
from tests import factories
from tests.conftest import csrf_token_from, sign_in

pytestmark = pytest.mark.night(tracks=8)


@pytest.fixture
def night(night, app_ctx):
    return night.attach()


@pytest.fixture
def threshold(app):
    """Lower the approval threshold to R10 (a request here costs more) for one test."""
    saved = app.config["ADMIN_REFUND_APPROVAL_CENTS"]
    app.config["ADMIN_REFUND_APPROVAL_CENTS"] = 1000
    yield 1000
    app.config["ADMIN_REFUND_APPROVAL_CENTS"] = saved


@pytest.fixture
def two_admins(app):
    """Two admins, each signed in on their own client: (client, user) pairs."""
    made = []
    for name in ("Asker", "Approver"):
        user = factories.create_user("admin", name=name)
        db.session.commit()
        client = app.test_client()
        with app.app_context():
            assert sign_in(client, user.email).status_code == 303
        made.append((client, user))
    return made


# Each request in an app context of its own: two admins' clients must not
# share the test's `g` (Flask-Login keeps the signed-in user there).

def page(client, url: str, status: int = 200) -> str:
    with client.application.app_context():
        response = client.get(url)
    assert response.status_code == status, (url, response.status_code)
    return response.get_data(as_text=True)


def post(client, url: str, **data):
    token = csrf_token_from(page(client, "/admin/refunds"))
    with client.application.app_context():
        return client.post(url, data={"csrf_token": token, **data})


def played_request_payment(night, track_index: int = 0) -> Payment:
    """A request the DJ played: its payment is COMPLETED and nothing automatic will refund it."""
    request = factories.paid_request(night.set, night.tracks[track_index], factories.device(), status="played")
    db.session.commit()
    return db.session.get(Payment, request.payment_id)


def refund_moves(payment: Payment) -> int:
    return db.session.scalar(select(func.count()).select_from(PaymentTransition).where(
        PaymentTransition.payment_id == payment.id, PaymentTransition.to_state == "REFUND_PENDING"))


def refund_jobs(payment: Payment) -> int:
    """Refund jobs waiting in the queue for this payment (no worker runs in these tests)."""
    queue = tasks.queue("payments")
    return sum(1 for job in queue.get_jobs() if job.func_name == "jobs.payments.refund_payment"
               and job.args == (payment.id,))


def state(payment: Payment) -> str:
    db.session.expire_all()
    return db.session.get(Payment, payment.id).state


def actions(target_id: str) -> list[str]:
    return [a.action for a in db.session.scalars(select(AuditLog).where(AuditLog.target_id == target_id)
                                                  .order_by(AuditLog.id))]


# -- access -----------------------------------------------------------------------------------------

QUEUE_URLS = [("GET", "/admin/refunds"), ("GET", "/admin/disputes"), ("POST", "/admin/refunds/x/approve"),
              ("POST", "/admin/refunds/x/reject"), ("POST", "/admin/disputes/x/refund"),
              ("POST", "/admin/disputes/x/reject"), ("POST", "/admin/payments/x/refund")]


@pytest.mark.parametrize("role", ["fan", "dj", "venue"])
def test_the_queues_refuse_other_roles(app, signed_in, role):
    client = signed_in(role)
    token = client.get("/").get_data(as_text=True).split('"X-CSRFToken": "')[1].split('"')[0]
    for method, url in QUEUE_URLS:
        response = client.open(url, method=method, headers={"X-CSRFToken": token})
        assert response.status_code == 403, (method, url, response.status_code)


def test_every_decision_needs_the_csrf_token(night, two_admins, threshold):
    (asker, _), (approver, _) = two_admins
    payment = played_request_payment(night)
    asked = post(asker, f"/admin/payments/{payment.public_id}/refund", refund_reason="Played the wrong song")
    assert asked.status_code == 303
    refund = db.session.scalar(select(RefundRequest))
    for url in (f"/admin/refunds/{refund.public_id}/approve", f"/admin/refunds/{refund.public_id}/reject",
                f"/admin/payments/{payment.public_id}/refund"):
        with approver.application.app_context():
            assert approver.post(url, data={"reason": "no token here"}).status_code == 400, url
    assert state(payment) == "COMPLETED" and db.session.scalar(select(RefundRequest.status)) == "pending"


# -- the approval rule ------------------------------------------------------------------------------

def test_a_refund_at_or_below_the_threshold_starts_at_once_with_its_reason(night, admin_client):
    payment = played_request_payment(night)
    url = f"/admin/payments/{payment.public_id}"
    assert "Refund this request payment" in page(admin_client, url)
    refused = post(admin_client, f"{url}/refund", refund_reason="no")
    assert refused.status_code == 422 and "Give the reason in 5 to 200 characters." in refused.get_data(as_text=True)
    assert state(payment) == "COMPLETED"
    done = post(admin_client, f"{url}/refund", refund_reason="The fan was charged by mistake")
    assert done.status_code == 303
    assert state(payment) == "REFUND_PENDING" and refund_moves(payment) == 1 and refund_jobs(payment) == 1
    refund = db.session.scalar(select(RefundRequest))
    assert (refund.status, refund.second_admin, refund.decided_by_id) == ("approved", False, refund.asked_by_id)
    assert db.session.get(Payment, payment.id).refund_reason == "ADMIN_REFUNDED: The fan was charged by mistake"
    assert actions(payment.public_id) == ["refund.ask"]
    timeline = page(admin_client, url)
    assert "The fan was charged by mistake" in timeline and "Refunds asked by admins" in timeline
    assert "Refund this request payment" not in timeline
    again = post(admin_client, f"{url}/refund", refund_reason="The fan was charged by mistake")
    assert again.status_code == 409 and "only a paid payment" in again.get_data(as_text=True)
    assert refund_moves(payment) == 1


def test_a_request_still_in_the_queue_is_left_to_the_automatic_rules(night, admin_client):
    waiting = night.requests["Despacito"]  # accepted in tonight's queue
    payment = db.session.get(Payment, waiting.payment_id)
    url = f"/admin/payments/{payment.public_id}"
    assert "still accepted in the DJ's queue" in page(admin_client, url)
    refused = post(admin_client, f"{url}/refund", refund_reason="The fan asked us to")
    assert refused.status_code == 409 and "a veto, its expiry or the set&#39;s end" in refused.get_data(as_text=True)
    assert state(payment) == "COMPLETED" and db.session.scalar(select(func.count()).select_from(RefundRequest)) == 0


def test_above_the_threshold_a_second_admin_approves_and_the_asker_cannot(night, two_admins, threshold):
    (asker, asker_user), (approver, approver_user) = two_admins
    payment = played_request_payment(night)
    asked = post(asker, f"/admin/payments/{payment.public_id}/refund", refund_reason="Duplicate charge at the bar")
    assert asked.status_code == 303
    follow = page(asker, f"/admin/payments/{payment.public_id}")
    assert "waits for a second admin" in follow
    assert state(payment) == "COMPLETED" and refund_jobs(payment) == 0  # the provider is not called yet
    refund = db.session.scalar(select(RefundRequest))
    assert (refund.status, refund.second_admin) == ("pending", True)

    queue = page(asker, "/admin/refunds")
    assert refund.public_id in queue and "Duplicate charge at the bar" in queue
    assert "You asked for this refund: a different admin approves it." in queue
    own = post(asker, f"/admin/refunds/{refund.public_id}/approve")
    assert own.status_code == 403 and "a different admin must approve it" in own.get_data(as_text=True)
    assert state(payment) == "COMPLETED"
    with pytest.raises(DomainError, match="different admin"):  # the service says the same without the page
        admin.approve_refund(refund.public_id, asker_user, None)

    assert "Approve and refund" in page(approver, "/admin/refunds")
    for _ in range(2):  # a double click
        assert post(approver, f"/admin/refunds/{refund.public_id}/approve").status_code == 303
    assert state(payment) == "REFUND_PENDING" and refund_moves(payment) == 1 and refund_jobs(payment) == 1
    db.session.expire_all()
    refund = db.session.get(RefundRequest, refund.id)
    assert (refund.status, refund.decided_by_id) == ("approved", approver_user.id)
    last = db.session.scalar(select(PaymentTransition).where(PaymentTransition.payment_id == payment.id)
                             .order_by(PaymentTransition.seq.desc()).limit(1))
    assert last.actor == f"admin:{approver_user.public_id}"
    assert actions(payment.public_id) == ["refund.ask", "refund.approve"]
    assert refund.public_id in page(approver, "/admin/refunds?status=approved")
    assert "No refund is waiting for approval." in page(approver, "/admin/refunds")


def test_the_database_refuses_an_approval_by_the_asker(night, two_admins, threshold):
    (asker, asker_user), _ = two_admins
    payment = played_request_payment(night)
    post(asker, f"/admin/payments/{payment.public_id}/refund", refund_reason="Duplicate charge at the bar")
    with pytest.raises(Exception, match="second_admin_approves"):
        db.session.execute(update(RefundRequest).values(status="approved", decided_by_id=asker_user.id,
                                                        decided_at=utcnow()))
        db.session.flush()
    db.session.rollback()


def test_a_rejected_refund_moves_no_money_and_may_be_asked_again(night, two_admins, threshold):
    (asker, _), (approver, approver_user) = two_admins
    payment = played_request_payment(night)
    post(asker, f"/admin/payments/{payment.public_id}/refund", refund_reason="Duplicate charge at the bar")
    second = post(asker, f"/admin/payments/{payment.public_id}/refund", refund_reason="Asking twice by mistake")
    assert second.status_code == 409 and "already waiting for a second admin" in second.get_data(as_text=True)
    refund = db.session.scalar(select(RefundRequest))
    url = f"/admin/refunds/{refund.public_id}/reject"
    blank = post(approver, url, reason="")
    assert blank.status_code == 422 and "Give the reason" in blank.get_data(as_text=True)
    assert post(approver, url, reason="The bank shows one charge only").status_code == 303
    assert post(approver, url, reason="The bank shows one charge only").status_code == 303  # the same answer
    late = post(approver, f"/admin/refunds/{refund.public_id}/approve")
    assert late.status_code == 409 and "rejected" in late.get_data(as_text=True)
    assert state(payment) == "COMPLETED" and refund_moves(payment) == 0
    db.session.expire_all()
    refund = db.session.get(RefundRequest, refund.id)
    assert (refund.status, refund.decided_by_id, refund.decision_note) == (
        "rejected", approver_user.id, "The bank shows one charge only")
    assert "The bank shows one charge only" in page(approver, "/admin/refunds?status=rejected")
    assert "The bank shows one charge only" in page(approver, f"/admin/payments/{payment.public_id}")
    assert actions(payment.public_id) == ["refund.ask", "refund.reject"]
    # Rejected is not pending: the payment may be asked for again.
    assert post(asker, f"/admin/payments/{payment.public_id}/refund",
                refund_reason="Second look: two charges").status_code == 303


def test_two_admins_approving_at_the_same_instant_refund_once(app, night, threshold):
    asker, first, second = (factories.create_user("admin") for _ in range(3))
    db.session.commit()
    payment = played_request_payment(night)
    refund = admin.ask_refund(payment.id, asker, "Charged twice by the card machine", None)
    refund_id, payment_id = refund.public_id, payment.id
    approvers = [first.id, second.id] * 3
    barrier, outcomes = threading.Barrier(len(approvers)), []

    def approve(user_id: int) -> None:
        with app.app_context():
            user = db.session.get(User, user_id)
            db.session.rollback()
            barrier.wait()
            try:
                outcomes.append(admin.approve_refund(refund_id, user, None))
            except DomainError as refusal:
                outcomes.append(refusal.code)
            finally:
                db.session.remove()

    threads = [threading.Thread(target=approve, args=(user_id,)) for user_id in approvers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["already"] * (len(approvers) - 1) + ["approved"], outcomes
    payment = db.session.get(Payment, payment_id)
    assert state(payment) == "REFUND_PENDING" and refund_moves(payment) == 1 and refund_jobs(payment) == 1
    assert db.session.scalar(select(func.count()).select_from(AuditLog)
                             .where(AuditLog.action == "refund.approve")) == 1


def test_a_tip_above_the_threshold_waits_for_a_second_admin_too(night, two_admins, threshold):
    (asker, _), (approver, _) = two_admins
    payment = Payment(purpose="tip", amount_cents=5000, provider="sandbox", device_id=night.fan.id,
                      set_id=night.set.id)
    record_transition(payment, "PENDING", "tip checkout")
    record_transition(payment, "COMPLETED", "tip paid")
    tip = Tip(payment_id=payment.id, set_id=night.set.id, dj_id=night.dj.id, device_id=night.fan.id,
              amount_cents=5000, message="cheers")
    db.session.add(tip)
    db.session.commit()
    assert post(asker, f"/admin/payments/{payment.public_id}/refund-tip",
                refund_reason="Fan tipped R50 instead of R5").status_code == 303
    assert state(payment) == "COMPLETED"
    assert actions(tip.public_id) == ["tip.refund"]
    refund = db.session.scalar(select(RefundRequest))
    assert post(approver, f"/admin/refunds/{refund.public_id}/approve").status_code == 303
    assert state(payment) == "REFUND_PENDING"
    assert db.session.get(Payment, payment.id).refund_reason == "TIP_REFUNDED: Fan tipped R50 instead of R5"


def test_the_refund_queue_is_paged(night, two_admins, threshold, monkeypatch):
    (asker, asker_user), _ = two_admins
    for index in range(5):
        admin.ask_refund(played_request_payment(night, index).id, asker_user, f"reason number {index}", None)
    monkeypatch.setattr(admin.refunds, "PAGE_SIZE", 2)
    first = page(asker, "/admin/refunds")
    assert first.count('data-refund="') == 2 and 'rel="next"' in first and "reason number 0" in first  # oldest first
    last = page(asker, "/admin/refunds?page=3")
    assert last.count('data-refund="') == 1 and 'rel="prev"' in last and 'rel="next"' not in last
    assert page(asker, "/admin/refunds?status=bogus&page=zero").count('data-refund="') == 2


# -- disputes ---------------------------------------------------------------------------------------

def disputed(night, *, category="charged_twice", details="Two charges on my card for one song.",
             ago: timedelta = timedelta(0), track_index: int = 0) -> tuple[Payment, Dispute]:
    """A played request of the night's fan, disputed `ago`."""
    request = factories.paid_request(night.set, night.tracks[track_index], night.fan, status="played")
    db.session.commit()
    payment = db.session.get(Payment, request.payment_id)
    dispute = file_dispute(payment, category=category, details=details, device_id=night.fan.id, user_id=None)
    if ago:
        db.session.execute(update(Dispute).where(Dispute.id == dispute.id).values(created_at=utcnow() - ago))
        db.session.commit()
    return payment, dispute


def fan_page(app, night) -> str:
    client = app.test_client()
    with app.app_context():
        assert sign_in(client, night.logins["fan"]).status_code == 303
    return page(client, "/me")


def test_the_queue_shows_open_disputes_oldest_first_with_what_an_admin_needs(night, admin_client):
    newer, _ = disputed(night, category="wrong_amount", details="Charged R80, the screen said R30.", track_index=1)
    older, _ = disputed(night, details="Two charges on my card.", ago=timedelta(hours=3, minutes=5))
    html = page(admin_client, "/admin/disputes")
    assert html.index(older.public_id) < html.index(newer.public_id)
    for text in ("I was charged twice", "The amount is wrong", "Two charges on my card.",
                 "Charged R80, the screen said R30.", "3 h 5 min ago", "Friday Night Live", "DJ Thabo",
                 f"/admin/payments/{older.public_id}"):
        assert text in html, text
    assert "Two charges on my card." in page(admin_client, f"/admin/payments/{older.public_id}")  # on the timeline


def test_a_rejected_dispute_tells_the_fan_why(app, night, admin_client):
    payment, dispute = disputed(night)
    url = f"/admin/disputes/{dispute.public_id}/reject"
    blank = post(admin_client, url, reason=" ")
    assert blank.status_code == 422 and "Give the reason" in blank.get_data(as_text=True)
    assert post(admin_client, url, reason="Only one charge reached your card.").status_code == 303
    assert post(admin_client, url, reason="Only one charge reached your card.").status_code == 303  # once
    late = post(admin_client, f"/admin/disputes/{dispute.public_id}/refund", reason="Changed my mind")
    assert late.status_code == 409 and "already answered: rejected" in late.get_data(as_text=True)
    assert state(payment) == "COMPLETED"
    assert "closed, not refunded</strong> — Only one charge reached your card." in fan_page(app, night)
    assert actions(dispute.public_id) == ["dispute.reject"]
    assert "No open dispute." in page(admin_client, "/admin/disputes")
    assert "Only one charge reached your card." in page(admin_client, "/admin/disputes?status=resolved")


def test_a_refunded_dispute_goes_through_the_refund_path_and_tells_the_fan(app, night, admin_client):
    payment, dispute = disputed(night)
    url = f"/admin/disputes/{dispute.public_id}/refund"
    assert post(admin_client, url, reason="Sorry: the card machine charged you twice.").status_code == 303
    again = post(admin_client, url, reason="Sorry: the card machine charged you twice.")
    assert again.status_code == 409
    assert state(payment) == "REFUND_PENDING" and refund_moves(payment) == 1 and refund_jobs(payment) == 1
    assert db.session.get(Payment, payment.id).refund_reason.startswith("DISPUTE_REFUNDED: ")
    db.session.expire_all()
    assert db.session.get(Dispute, dispute.id).status == "refunded"
    assert "settled, refunded</strong> — Sorry: the card machine charged you twice." in fan_page(app, night)
    assert actions(dispute.public_id) == ["dispute.refund"]
    assert db.session.scalar(select(RefundRequest.dispute_id)) == dispute.id


def test_a_large_disputed_refund_waits_for_a_second_admin_and_then_closes_the_dispute(
        app, night, two_admins, threshold):
    (asker, _), (approver, _) = two_admins
    payment, dispute = disputed(night)
    assert post(asker, f"/admin/disputes/{dispute.public_id}/refund",
                reason="Two charges: refunding one.").status_code == 303
    assert state(payment) == "COMPLETED"
    queue = page(asker, "/admin/disputes")
    assert "waits for a second admin&#39;s approval" in queue
    assert "open, we are looking at it" in fan_page(app, night)
    refused = post(asker, f"/admin/disputes/{dispute.public_id}/reject", reason="Never mind this one")
    assert refused.status_code == 409 and "approve or reject it on the Refunds page" in refused.get_data(as_text=True)
    refund = db.session.scalar(select(RefundRequest))
    assert refund.dispute_id == dispute.id and "from a dispute" in page(approver, "/admin/refunds")
    assert post(approver, f"/admin/refunds/{refund.public_id}/approve").status_code == 303
    assert state(payment) == "REFUND_PENDING"
    assert "settled, refunded</strong> — Two charges: refunding one." in fan_page(app, night)


def test_a_dispute_of_a_charge_already_being_refunded_closes_without_a_second_refund(night, admin_client):
    payment, dispute = disputed(night)
    payment = db.session.get(Payment, payment.id)
    record_transition(payment, "REFUND_PENDING", "VETOED: refunded meanwhile")
    db.session.commit()
    assert post(admin_client, f"/admin/disputes/{dispute.public_id}/refund",
                reason="Your refund is already on its way.").status_code == 303
    db.session.expire_all()
    assert db.session.get(Dispute, dispute.id).status == "refunded" and refund_moves(payment) == 1
    assert db.session.scalar(select(func.count()).select_from(RefundRequest)) == 0


def test_the_disputes_queue_is_paged(night, admin_client, monkeypatch):
    for index in range(3):
        disputed(night, details=f"dispute number {index}", track_index=index, ago=timedelta(minutes=10 - index))
    monkeypatch.setattr(admin.refunds, "PAGE_SIZE", 2)
    monkeypatch.setattr(admin.disputes, "PAGE_SIZE", 2)
    first = page(admin_client, "/admin/disputes")
    assert first.count('data-dispute="') == 2 and "dispute number 0" in first and 'rel="next"' in first
    second = page(admin_client, "/admin/disputes?status=open&page=2")
    assert second.count('data-dispute="') == 1 and "dispute number 2" in second


def test_a_dispute_of_a_failed_refund_starts_a_new_attempt_through_the_refund_path(app, night, admin_client):
    payment, dispute = disputed(night)
    payment = db.session.get(Payment, payment.id)
    record_transition(payment, "REFUND_PENDING", "VETOED: the DJ said no")
    record_transition(payment, "REFUND_FAILED", "refund declined by the bank")
    payment.refund_retry_at = None  # out of automatic attempts
    db.session.commit()
    assert post(admin_client, f"/admin/disputes/{dispute.public_id}/refund",
                reason="We are sending your refund again.").status_code == 303
    assert state(payment) == "REFUND_PENDING" and refund_moves(payment) == 2 and refund_jobs(payment) == 1
    db.session.expire_all()
    assert db.session.get(Dispute, dispute.id).status == "refunded"
