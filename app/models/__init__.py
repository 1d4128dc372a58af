"""Every model, importable from one place (Alembic reads the metadata here)."""
from .analytics import (AnalyticsBucket, AnalyticsHour, AnalyticsSync, AnalyticsTipper, AnalyticsTipperTotal,
                        AnalyticsTotalMonth, AnalyticsTrack, AnalyticsTrackTotal, AnalyticsWait, AnalyticsWaitMonth)
from .base import CURRENCY, utcnow  # noqa: F401
from .bookings import AvailabilityException, AvailabilityRule, AvailabilityWeek, Booking, BookingSlot
from .events import DJSet, Event
from .imports import LibraryImport
from .library import Track
from .notifications import Notification, OutgoingMail, PushSubscription
from .payments import IdempotencyKey, Payment, PaymentTransition, Tip, WebhookEvent
from .profiles import DJ_GENRES, DJProfile, VenueProfile
from .refunds import RefundRequest
from .requests import SongRequest, Vote
from .safety import AuditLog, Ban, BlockedKeyword, Dispute, FraudAlert, Report
from .users import GuestDevice, User, UserSession
from .vouchers import Voucher, VoucherBatch

__all__ = [
    "AnalyticsBucket", "AnalyticsHour", "AnalyticsSync", "AnalyticsTipper", "AnalyticsTipperTotal",
    "AnalyticsTotalMonth", "AnalyticsTrack", "AnalyticsTrackTotal", "AnalyticsWait", "AnalyticsWaitMonth",
    "AuditLog", "AvailabilityException", "AvailabilityRule", "AvailabilityWeek", "Ban", "BlockedKeyword", "Booking",
    "BookingSlot", "DJ_GENRES", "DJProfile", "DJSet", "Dispute", "Event", "FraudAlert", "GuestDevice",
    "IdempotencyKey", "LibraryImport", "Notification", "OutgoingMail", "Payment", "PaymentTransition", "PushSubscription",
    "RefundRequest", "Report",
    "SongRequest", "Tip", "Track", "User", "UserSession", "VenueProfile", "Vote", "Voucher", "VoucherBatch",
    "WebhookEvent",
]
