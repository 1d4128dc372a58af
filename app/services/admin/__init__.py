"""The admin console's reads: platform figures and the audit log."""
from .stats import platform_overview, recent_audit

__all__ = ["platform_overview", "recent_audit"]
