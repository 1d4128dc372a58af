"""Song requests: the rules a request must pass, the state machine, the
fan's checkout, turning a paid checkout into its request (or a refund), the
DJ's actions on the queue, vetoes and expiry with their refunds, the end
of a set, and vouchers (a DJ's signed codes that pay for one request)."""
from .actions import (
    ActionOutcome,
    ActionRefused,
    accept,
    batch_accept,
    batch_veto,
    mark_played,
    pause_requests,
    resume_requests,
    start_playing,
    undo_accept,
    veto,
)
from .checkout import CheckoutStarted, start_request_checkout
from .fulfil import fulfil_request
from .lifecycle import close_ended_sets, close_set, end_set_now, refund_request, veto_request
from .rules import MAX_ACTIVE_PER_FAN, RequestRefused, refusal_before_paying
from .states import IllegalRequestMove, can_move, move_request
from .vouchers import (
    BatchRefused,
    VoucherRefused,
    batch_cards,
    check_voucher,
    create_batch,
    event_batches,
    most_a_voucher_can_be_worth,
    redeem_voucher,
)

__all__ = ["MAX_ACTIVE_PER_FAN", "ActionOutcome", "ActionRefused", "BatchRefused", "CheckoutStarted",
           "IllegalRequestMove", "VoucherRefused", "batch_cards", "check_voucher", "create_batch", "event_batches",
           "most_a_voucher_can_be_worth", "redeem_voucher", "refusal_before_paying",
           "RequestRefused", "accept", "batch_accept", "batch_veto", "can_move", "close_ended_sets", "close_set",
           "end_set_now", "fulfil_request", "mark_played", "move_request", "pause_requests",
           "refund_request", "resume_requests", "start_playing", "start_request_checkout", "undo_accept", "veto",
           "veto_request"]
