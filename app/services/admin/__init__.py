"""The admin console: platform figures, the audit log, the payments
explorer with the stuck-payment actions, sanctions and fans' reports."""
from . import reports, sanctions
from .audit import KNOWN_ACTIONS, KNOWN_TARGET_TYPES, AuditQuery, admin_emails, record_action, search_audit
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

__all__ = ["KNOWN_ACTIONS", "KNOWN_TARGET_TYPES", "AuditQuery", "admin_emails", "reports", "sanctions",
           "search_audit", "EXPORT_LIMIT", "PAGE_SIZE", "PaymentQuery", "ask_provider", "export_rows", "mark_resolved",
           "payment_timeline", "platform_overview", "recent_audit", "record_action", "retry_refund",
           "search_payments", "stuck_payments"]
