"""Tips: a fan thanks the DJ with money during a live set, through the same
checkout and ledger as a song request (a Payment whose purpose is "tip").

    start_tip_checkout -> Payment PENDING (no capacity hold), Yoco checkout
    payments.confirm_payment -> fulfil_tip: the Tip row, published live
    refund_tip -> an admin's refund, through the payments' refund path

A tip is never refunded by the system (a set's end, a veto, an expiry touch
request payments only); only an admin refunds one."""
from .checkout import MAX_TIP_CENTS, MIN_TIP_CENTS, PRESET_TIP_CENTS, TipRefused, TipStarted, start_tip_checkout
from .fulfil import fulfil_tip
from .read import TipPrompt, tip_for_payment, tip_prompt
from .refunds import refund_tip

__all__ = ["MAX_TIP_CENTS", "MIN_TIP_CENTS", "PRESET_TIP_CENTS", "TipPrompt", "TipRefused", "TipStarted",
           "fulfil_tip", "refund_tip", "start_tip_checkout", "tip_for_payment", "tip_prompt"]
