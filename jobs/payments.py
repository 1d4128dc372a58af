"""Payment jobs: webhook processing, status checks, refunds, reconciliation.

Each re-reads the payment and acts only if its state still calls for it
(app/services/payments), so running one twice changes nothing.
"""
from __future__ import annotations

from app.services import payments

from .context import with_app_context


@with_app_context
def process_webhook(webhook_row_id: int) -> str:
    """Apply one stored webhook from the inbox."""
    return payments.process_webhook(webhook_row_id)


@with_app_context
def verify_checkout(payment_id: int) -> str:
    """Ask the provider how a pending checkout stands."""
    return payments.verify_checkout(payment_id)


@with_app_context
def recheck_given_up_checkout(payment_id: int) -> str:
    """A FAILED or EXPIRED checkout may have been paid after all."""
    return payments.recheck_given_up_checkout(payment_id)


@with_app_context
def refund_payment(payment_id: int) -> str:
    """Ask the provider to refund (the outcome comes by webhook)."""
    return payments.send_refund(payment_id)


@with_app_context
def retry_refund(payment_id: int) -> None:
    """A failed refund's backoff is over: try again."""
    payments.retry_refund(payment_id)


@with_app_context
def reconcile_payments() -> dict[str, int]:
    """Every 5 minutes: settle anything stuck in a non-final state."""
    return payments.reconcile_payments()
