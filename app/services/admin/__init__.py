"""The admin console: platform figures, the audit log, and the payments
explorer with the stuck-payment actions."""
from .audit import record_action
from .payments import (
    EXPORT_LIMIT,
    PAGE_SIZE,
    PaymentQuery,
    ask_provider,
    export_rows,
    mark_resolved,
    payment_timeline,
    retry_refund,
    search_payments,
    stuck_payments,
)
from .stats import platform_overview, recent_audit

__all__ = ["EXPORT_LIMIT", "PAGE_SIZE", "PaymentQuery", "ask_provider", "export_rows", "mark_resolved",
           "payment_timeline", "platform_overview", "recent_audit", "record_action", "retry_refund",
           "search_payments", "stuck_payments"]
