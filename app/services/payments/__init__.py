"""Money: the payment ledger (the state machine and its append-only
history), confirming a paid checkout and handing it to its purpose's
fulfilment, refunds and their retries, reconciliation with the provider,
the Yoco client and webhook signatures."""
from .confirmation import (
    checkout_not_created,
    confirm_payment,
    fulfils,
    mark_payment_failed,
    release_hold,
    send_to_pay_page,
)
from .ledger import (
    REFUND_ATTEMPTS,
    IllegalTransition,
    lock_payment,
    lock_payments,
    payments_by_state,
    record_transition,
    record_transitions,
    refund_attempts,
)
from .reconciliation import process_webhook, recheck_given_up_checkout, reconcile_payments, verify_checkout
from .refunds import (
    begin_refund,
    give_up_waiting_for_refund,
    retry_due_refunds,
    retry_refund,
    schedule_refund_retry,
    send_refund,
    settle_refund,
)
from .signing import WebhookRejected, sign_headers, verify
from .yoco import ProviderRejected, ProviderUnavailable, YocoError, yoco_client

__all__ = ["REFUND_ATTEMPTS", "IllegalTransition", "ProviderRejected", "ProviderUnavailable", "WebhookRejected",
           "YocoError", "begin_refund", "checkout_not_created", "confirm_payment", "fulfils",
           "give_up_waiting_for_refund", "lock_payment", "lock_payments", "mark_payment_failed", "payments_by_state",
           "process_webhook",
           "recheck_given_up_checkout", "reconcile_payments", "record_transition", "record_transitions",
           "refund_attempts", "release_hold", "retry_due_refunds", "retry_refund", "schedule_refund_retry",
           "send_refund", "send_to_pay_page", "settle_refund", "sign_headers", "verify", "verify_checkout",
           "yoco_client"]
