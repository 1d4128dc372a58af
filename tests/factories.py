"""Factories for a test's world: accounts, events, sets, tracks, devices, paid
requests, and a whole night built from them (`create_night`).

Each factory works in the current app context's session and flushes, so ids
exist; the caller commits (a fixture usually does, once, at its end). Only
what a test needs is built: a handful of real songs from the bundled Spotify
export instead of the demo's 3,046, one DJ instead of the demo's four logins.
`app.services.demo.seed_demo` is tested by tests/integration/test_seed.py and
used nowhere else.
"""
from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select

from app.extensions import db
from app.models import (
    DJProfile, DJSet, Event, GuestDevice, Payment, SongRequest, Track, User, VenueProfile, Vote, utcnow,
)
from app.services import accounts
from app.services.library import TrackRow, merge_tracks, read_spotify_csv, track_keys
from app.services.payments.ledger import record_transition

PASSWORD = "correct-horse-battery"
JOHANNESBURG = {"address": "12 Fox Street, Maboneng", "city": "Johannesburg", "latitude": -26.2044,
                "longitude": 28.0592}
# The demo night's queue, which many tests read as a familiar shape:
# (title, artist, status, votes). One fan asked for the first and the last.
NIGHT_REQUESTS = (
    ("Blinding Lights", "The Weeknd", "playing", 0),
    ("Despacito", "Luis Fonsi", "accepted", 3),
    ("Señorita", "Shawn Mendes", "pending", 2),
    ("bad guy", "Billie Eilish", "pending", 0),
)

_serial = itertools.count(1)
_HTML_ESCAPED = re.compile(r"[&<>\"']")


def LATIN(row: TrackRow) -> bool:  # noqa: N802 - a constant, for create_tracks(where=LATIN)
    """The export's Latin songs (a `where` for create_tracks and create_night)."""
    return row.genre == "latin"


def _next() -> int:
    return next(_serial)


# -- accounts ------------------------------------------------------------------------------------

def create_user(role: str = "fan", *, email: str | None = None, name: str | None = None,
                password: str = PASSWORD, **fields) -> User:
    """An account of `role` (fan, dj, venue, admin) that signs in with `password`.

    A dj gets a DJ profile (name is its stage name), a venue a venue profile."""
    email = email or f"{role}{_next()}@test.example"
    if role == "dj":
        return accounts.create_dj(email, password, name or "DJ Test", city=fields.get("city", ""))
    if role == "venue":
        return accounts.create_venue(email, password, name or "Test Venue", **fields)
    return accounts.create_user(email, password, role, name or role.title())


def create_dj(name: str = "DJ Test", *, email: str | None = None, city: str = "Johannesburg") -> DJProfile:
    return create_user("dj", email=email, name=name, city=city).dj_profile


def create_venue(name: str = "The Warehouse", *, email: str | None = None, **fields) -> VenueProfile:
    return create_user("venue", email=email, name=name, **{**JOHANNESBURG, **fields}).venue_profile


# -- events and sets -----------------------------------------------------------------------------

def create_event(dj: DJProfile, name: str = "Friday Night Live", *, status: str = "live",
                 starts_at: datetime | None = None, ends_at: datetime | None = None,
                 venue: VenueProfile | None = None, **fields) -> Event:
    """An event at a Johannesburg venue. A live one began an hour ago and ends
    in eight; any other starts in two days and lasts six hours."""
    now = utcnow().replace(second=0, microsecond=0)
    if starts_at is None:
        starts_at = now - timedelta(hours=1) if status == "live" else now + timedelta(days=2)
    if ends_at is None:
        ends_at = starts_at + timedelta(hours=9 if status == "live" else 6)
    place = {"venue_name": venue.name if venue else "The Warehouse", **JOHANNESBURG}
    if venue is not None:
        place.update(address=venue.address, city=venue.city, latitude=venue.latitude, longitude=venue.longitude)
    event = Event(dj_id=dj.id, venue_id=venue.id if venue else None, name=name, starts_at=starts_at,
                  ends_at=ends_at, status=status, **{**place, **fields})
    db.session.add(event)
    db.session.flush()
    return event


def create_set(event: Event, *, status: str | None = None, starts_at: datetime | None = None,
               ends_at: datetime | None = None, base_price_cents: int = 2000, hourly_cap: int = 20,
               requests_state: str = "open") -> DJSet:
    """A set over the whole event by default, live when the event is."""
    dj_set = DJSet(starts_at=starts_at or event.starts_at, ends_at=ends_at or event.ends_at,
                   status=status or ("live" if event.status == "live" else "scheduled"),
                   base_price_cents=base_price_cents, hourly_cap=hourly_cap, requests_state=requests_state)
    event.sets.append(dj_set)
    db.session.flush()
    return dj_set


# -- tracks ---------------------------------------------------------------------------------------

@functools.cache
def spotify_rows() -> tuple[TrackRow, ...]:
    """The bundled Spotify export as a library keeps it: the first line of each
    artist and title (what merging the whole file leaves), in file order."""
    seen, rows = set(), []
    for row in read_spotify_csv():
        key = track_keys(row.artist, row.title)
        if row.title.strip() and key not in seen:
            seen.add(key)
            rows.append(row)
    return tuple(rows)


def spotify_songs(*songs: str | tuple[str, str]) -> list[TrackRow]:
    """Real rows of the export by exact title, or (title, artist)."""
    found = []
    for song in songs:
        title, artist = song if isinstance(song, tuple) else (song, None)
        match = next((r for r in spotify_rows() if r.title == title and artist in (None, r.artist)), None)
        assert match is not None, f"{song!r} is not in the Spotify export"
        found.append(match)
    return found


def create_tracks(dj: DJProfile, n: int = 0, *, songs: Iterable[str | tuple[str, str]] = (),
                  rows: Iterable[TrackRow] = (), where: Callable[[TrackRow], bool] | None = None,
                  source: str = "csv") -> list[Track]:
    """Tracks in `dj`'s library, merged the way an import merges them; returned in order.

    `songs`: real songs of the export by title or (title, artist); `rows`: given
    rows; `where`: every export row it accepts; then `n` more real songs of
    the export, from its top, that none of those already are and whose title
    and artist HTML shows as they are (no &, <, >, quotes), so that a test can
    look for them in a page."""
    chosen = [*spotify_songs(*songs), *rows]
    named = {track_keys(r.artist, r.title) for r in chosen}
    export = [(track_keys(r.artist, r.title), r) for r in spotify_rows()]
    picked = {key for key, r in export if key not in named and where is not None and where(r)}
    extra = (key for key, r in export
             if key not in named and key not in picked and not _HTML_ESCAPED.search(r.title + r.artist))
    picked.update(itertools.islice(extra, n))
    chosen += [r for key, r in export if key in picked]  # in the export's order, as an import adds them
    merge_tracks(dj, chosen, source)
    db.session.flush()
    by_key = {(t.artist_key, t.title_key): t
              for t in db.session.scalars(select(Track).where(Track.dj_id == dj.id))}
    seen, tracks = set(), []
    for row in chosen:
        key = track_keys(row.artist, row.title)
        if key not in seen:
            seen.add(key)
            tracks.append(by_key[key])
    return tracks


# -- fans and their paid requests -----------------------------------------------------------------

def device(public_id: str | None = None, user: User | None = None) -> GuestDevice:
    """The phone known as `public_id` (made the first time it is asked for)."""
    public_id = public_id or f"test-device-{_next()}"
    found = db.session.scalar(select(GuestDevice).where(GuestDevice.public_id == public_id))
    if found is None:
        found = GuestDevice(public_id=public_id, user_id=user.id if user else None)
        db.session.add(found)
        db.session.flush()
    return found


def paid_request(dj_set: DJSet, track: Track, fan: GuestDevice, *, status: str = "pending",
                 created_at: datetime | None = None, votes: int = 0, voters: Sequence[GuestDevice] = (),
                 shoutout: str | None = None) -> SongRequest:
    """A request as a completed payment leaves it, the ledger included.

    `votes` is its vote count; with `voters`, the first `votes` of them cast real votes."""
    price = track.price_cents(dj_set.base_price_cents)
    payment = Payment(purpose="request", amount_cents=price, provider="sandbox", device_id=fan.id,
                      user_id=fan.user_id, set_id=dj_set.id, track_id=track.id)
    record_transition(payment, "PENDING", "test checkout")
    record_transition(payment, "COMPLETED", "test payment")
    song_request = SongRequest(set_id=dj_set.id, track_id=track.id, device_id=fan.id, user_id=fan.user_id,
                               payment_id=payment.id, amount_cents=price, status=status, vote_count=votes,
                               created_at=created_at or utcnow())
    if shoutout is not None:
        song_request.shoutout, song_request.shoutout_status = shoutout, "approved"
    if status in ("accepted", "playing"):
        song_request.accepted_at = utcnow()
    if status == "playing":
        song_request.playing_at = utcnow()
    db.session.add(song_request)
    db.session.flush()
    if voters:
        assert len(voters) >= votes, "fewer voters than votes"
        db.session.add_all(Vote(request_id=song_request.id, device_id=v.id) for v in voters[:votes])
        db.session.flush()
    return song_request


# -- a night ----------------------------------------------------------------------------------------

@dataclass
class Night:
    """A DJ live at an event: one live set, a queue, and tracks nobody asked for yet."""

    dj: DJProfile
    venue: VenueProfile
    event: Event
    set: DJSet
    requests: dict[str, SongRequest]  # by title: NIGHT_REQUESTS
    tracks: list[Track]             # requestable, not requested (the `songs` asked for first)
    fan: GuestDevice                # the phone behind two of the requests, signed in as a fan account
    voters: list[GuestDevice]
    logins: dict[str, str]          # role -> email of the DJ, the venue and the fan (password PASSWORD)

    @property
    def email(self) -> str:
        """The DJ's sign-in."""
        return self.logins["dj"]

    def rows(self) -> list:
        return [self.dj, self.venue, self.event, self.set, *self.requests.values(), *self.tracks, self.fan,
                *self.voters]

    def attach(self) -> Night:
        """Put its rows in the current app context's session (to change them there)."""
        db.session.add_all(self.rows())
        return self


def create_night(tracks: int = 40, *, songs: Iterable[str | tuple[str, str]] = (),
                 where: Callable[[TrackRow], bool] | None = None, requests: bool = True,
                 dj_name: str = "DJ Thabo", event_name: str = "Friday Night Live") -> Night:
    """The demo's live night in miniature: "Blinding Lights" playing,
    "Despacito" accepted (3 votes), "Señorita" (2 votes) and "bad guy" waiting,
    each paid through the ledger; plus real songs to request: `songs` by name,
    every song of the export `where` accepts, and `tracks` more."""
    dj = create_dj(dj_name)
    venue = create_venue()
    event = create_event(dj, event_name, venue=venue)
    dj_set = create_set(event)
    library = create_tracks(dj, tracks, songs=[*((title, artist) for title, artist, _, _ in NIGHT_REQUESTS), *songs],
                            where=where)
    queued, spare = library[:len(NIGHT_REQUESTS)], library[len(NIGHT_REQUESTS):]
    fan_account = create_user("fan", name="Demo Fan")
    fan = device(user=fan_account)
    voters = [device() for _ in range(3)]
    made = {}
    if requests:
        for (title, _, status, votes), track in zip(NIGHT_REQUESTS, queued):
            owner = fan if title in ("Blinding Lights", "bad guy") else device()
            made[title] = paid_request(dj_set, track, owner, status=status, votes=votes, voters=voters)
    logins = {"dj": dj.user.email, "venue": venue.user.email, "fan": fan_account.email}
    return Night(dj=dj, venue=venue, event=event, set=dj_set, requests=made, tracks=spare, fan=fan, voters=voters,
                 logins=logins)
