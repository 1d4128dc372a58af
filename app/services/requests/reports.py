"""A fan reports a problem with one of their requests (not played, the wrong
song, an offensive shout-out, ...): a `reports` row the admin console works
through. One open report per request and reporter: a second gets a clear
refusal while the first waits."""
from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select

from ...extensions import db
from ...models import Event, Report, SongRequest
from ...models.safety import REPORT_REASONS
from ..common.errors import DomainError

DETAILS_MAX = 1000
REASON_LABELS = {
    "not_played": "My song was not played",
    "wrong_song": "A different song was played",
    "offensive_shoutout": "A shout-out was offensive",
    "harassment": "Harassment or abuse",
    "fraud": "Something looks like fraud",
    "other": "Something else",
}
assert set(REASON_LABELS) == set(REPORT_REASONS)
# What a fan may report a DJ for (the DJ's own conduct, not a request of theirs).
DJ_REASON_LABELS = {
    "harassment": "Harassment or abuse",
    "offensive_shoutout": "Offensive content on the screen or the mic",
    "fraud": "Something looks like fraud",
    "other": "Something else",
}


def report_problem(song_request: SongRequest, *, reason: str, details: str, device_id: int | None,
                   user_id: int | None) -> Report:
    """File a report about `song_request` (its owner is the caller's check) and commit."""
    if reason not in REPORT_REASONS:
        raise DomainError("BAD_REASON", "Choose what went wrong from the list.", status=422)
    details = details.strip()
    if len(details) > DETAILS_MAX:
        raise DomainError("TOO_LONG", f"Keep it to {DETAILS_MAX:,} characters or fewer.", status=422)
    mine = [Report.reporter_device_id == device_id] if device_id is not None else [Report.reporter_user_id == user_id]
    if db.session.scalar(select(Report.id).where(Report.request_id == song_request.id, Report.status == "open",
                                                 *mine).limit(1)) is not None:
        raise DomainError("REPORT_OPEN", "You already reported a problem with this request. We will look at it "
                          "before another report can be sent.")
    report = Report(reporter_device_id=device_id, reporter_user_id=user_id, request_id=song_request.id,
                    event_id=song_request.dj_set.event_id, reason=reason, details=details)
    db.session.add(report)
    db.session.commit()
    return report


def report_dj(event: Event, *, reason: str, details: str, device_id: int | None, user_id: int | None) -> Report:
    """A fan reports the event's DJ (`target_user_id`: the DJ's account); one
    open report per reporter and event. Commits."""
    if reason not in DJ_REASON_LABELS:
        raise DomainError("BAD_REASON", "Choose what went wrong from the list.", status=422)
    details = details.strip()
    if len(details) > DETAILS_MAX:
        raise DomainError("TOO_LONG", f"Keep it to {DETAILS_MAX:,} characters or fewer.", status=422)
    if device_id is None and user_id is None:
        raise DomainError("NO_REPORTER", "Open the event page first, then report.", status=422)
    dj_user_id = event.dj.user_id
    mine = [Report.reporter_device_id == device_id] if device_id is not None else [Report.reporter_user_id == user_id]
    if db.session.scalar(select(Report.id).where(Report.event_id == event.id, Report.target_user_id == dj_user_id,
                                                 Report.status == "open", *mine).limit(1)) is not None:
        raise DomainError("REPORT_OPEN", "You already reported this DJ at this event. We will look at it before "
                          "another report can be sent.")
    report = Report(reporter_device_id=device_id, reporter_user_id=user_id, target_user_id=dj_user_id,
                    event_id=event.id, reason=reason, details=details)
    db.session.add(report)
    db.session.commit()
    return report


def latest_reports(request_ids: Collection[int], device_ids: Collection[int], user_id: int | None) -> dict[int, Report]:
    """Each request's newest report by these devices or this account, in one query."""
    if not request_ids:
        return {}
    by = Report.reporter_device_id.in_(device_ids)
    if user_id is not None:
        by = by | (Report.reporter_user_id == user_id)
    found: dict[int, Report] = {}
    for report in db.session.scalars(select(Report).where(Report.request_id.in_(request_ids), by)
                                     .order_by(Report.created_at, Report.id)):
        found[report.request_id] = report
    return found
