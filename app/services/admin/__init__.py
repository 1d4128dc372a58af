"""The admin console: platform figures, the audit log, the payments
explorer with the stuck-payment actions, the refund approval queue, the
disputes queue, sanctions and fans' reports."""
from . import reports, sanctions
from .audit import KNOWN_ACTIONS, KNOWN_TARGET_TYPES, AuditQuery, admin_emails, record_action, search_audit
from .disputes import disputes_of, list_disputes, refund_dispute, reject_dispute
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
from .refunds import (
    Audit,
    approval_threshold_cents,
    approve_refund,
    ask_refund,
    list_refunds,
    refunds_of,
    reject_refund,
)
from .stats import platform_overview, recent_audit

__all__ = ["KNOWN_ACTIONS", "KNOWN_TARGET_TYPES", "AuditQuery", "admin_emails", "reports", "sanctions",
           "search_audit", "EXPORT_LIMIT", "PAGE_SIZE", "Audit", "PaymentQuery", "approval_threshold_cents",
           "approve_refund", "ask_provider", "ask_refund", "disputes_of", "export_rows", "list_disputes",
           "list_refunds", "mark_resolved", "payment_timeline", "platform_overview", "recent_audit", "record_action",
           "refund_dispute", "refunds_of", "reject_dispute", "reject_refund", "retry_refund", "search_payments",
           "stuck_payments"]
