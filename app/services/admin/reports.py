"""The admin's queue of fans' reports (a problem with a request, an
offensive shout-out, a DJ): the oldest open first, each with what it is
about; dismiss it or action it with a note, and "action" may hide the
request's shout-out. Each is audited in the same transaction."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import aliased

from ...extensions import db
from ...models import DJProfile, Event, GuestDevice, Report, SongRequest, Track, User, utcnow
from ..common.errors import DomainError
from ..live.publish import publish_after_commit
from .audit import record_action

PAGE_SIZE = 50
STATUSES = ("open", "actioned", "dismissed")


@dataclass
class ReportRow:
    report: Report
    request: SongRequest | None
    track_title: str | None
    event_name: str | None
    event_public_id: str | None
    dj_name: str | None
    reporter_device: str | None
    reporter_email: str | None
    target_email: str | None
    target_name: str | None
    offender_device: str | None  # the device behind the reported request
    offender_email: str | None


@dataclass
class ReportPage:
    rows: list[ReportRow]
    page: int
    has_next: bool


_reporter_device = aliased(GuestDevice)
_reporter = aliased(User)
_target = aliased(User)
_offender_device = aliased(GuestDevice)
_offender = aliased(User)


def _rows_query():
    return (select(Report, SongRequest, Track.title, Event.name, Event.public_id, DJProfile.stage_name,
                   _reporter_device.public_id, _reporter.email, _target.email, _target.display_name,
                   _offender_device.public_id, _offender.email)
            .outerjoin(SongRequest, SongRequest.id == Report.request_id)
            .outerjoin(Track, Track.id == SongRequest.track_id)
            .outerjoin(Event, Event.id == Report.event_id)
            .outerjoin(DJProfile, DJProfile.id == Event.dj_id)
            .outerjoin(_reporter_device, _reporter_device.id == Report.reporter_device_id)
            .outerjoin(_reporter, _reporter.id == Report.reporter_user_id)
            .outerjoin(_target, _target.id == Report.target_user_id)
            .outerjoin(_offender_device, _offender_device.id == SongRequest.device_id)
            .outerjoin(_offender, _offender.id == SongRequest.user_id))


def report_queue(status: str = "open", page: int = 1) -> ReportPage:
    """A page of reports: open ones oldest first (the queue), handled ones newest first."""
    status = status if status in STATUSES else "open"
    order = (Report.created_at, Report.id) if status == "open" else (Report.handled_at.desc(), Report.id.desc())
    page = max(page, 1)
    found = db.session.execute(_rows_query().where(Report.status == status).order_by(*order)
                               .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE + 1)).all()
    return ReportPage([ReportRow(*f) for f in found[:PAGE_SIZE]], page, len(found) > PAGE_SIZE)


def get_report(public_id: str) -> ReportRow:
    found = db.session.execute(_rows_query().where(Report.public_id == public_id)).first()
    if found is None:
        raise DomainError("NOT_FOUND", "There is no such report.", status=404)
    return ReportRow(*found)


def _open_report(public_id: str) -> Report | None:
    report = db.session.scalar(select(Report).where(Report.public_id == public_id).with_for_update())
    if report is None:
        raise DomainError("NOT_FOUND", "There is no such report.", status=404)
    return report if report.status == "open" else None


def dismiss_report(public_id: str, admin: User, note: str, ip: str | None) -> bool:
    """Close the report with nothing done; False when it was already handled."""
    report = _open_report(public_id)
    if report is None:
        db.session.rollback()
        return False
    report.status, report.resolution, report.handled_by_id, report.handled_at = "dismissed", note, admin.id, utcnow()
    record_action(admin, "report.dismiss", "report", public_id, {"reason": note, "report_reason": report.reason}, ip)
    db.session.commit()
    return True


def action_report(public_id: str, admin: User, note: str, ip: str | None, *, hide_shoutout: bool) -> bool:
    """Close the report as acted on; with `hide_shoutout`, the reported
    request's shout-out is rejected (it leaves the DJ's dashboard and the
    public queue at the next live update). False when already handled."""
    report = _open_report(public_id)
    if report is None:
        db.session.rollback()
        return False
    hidden = False
    if hide_shoutout and report.request_id is not None:
        song_request = db.session.get(SongRequest, report.request_id)
        if song_request is not None and song_request.shoutout and song_request.shoutout_status != "rejected":
            song_request.shoutout_status = "rejected"
            hidden = True
            publish_after_commit(song_request.dj_set.event.public_id, "request_changed",
                                 set=song_request.dj_set.public_id, request=song_request.public_id)
    report.status, report.resolution, report.handled_by_id, report.handled_at = "actioned", note, admin.id, utcnow()
    record_action(admin, "report.action", "report", public_id,
                  {"reason": note, "report_reason": report.reason, "shoutout_hidden": hidden}, ip)
    db.session.commit()
    return True
