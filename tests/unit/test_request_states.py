"""The song request state machine: the table of moves and the one function that makes them."""
from datetime import datetime, timedelta, timezone

import pytest

from app.models import SongRequest
from app.models.requests import REQUEST_STATUSES, REQUEST_TRANSITIONS
from app.services.requests.states import IllegalRequestMove, can_move, move_request, statuses_that_move_to

NOW = datetime(2026, 12, 2, 21, 0, tzinfo=timezone.utc)


def _request(status: str, **fields) -> SongRequest:
    song_request = SongRequest(public_id="r1", **fields)
    song_request.status = status
    return song_request


def test_the_table_names_every_status_and_only_known_ones():
    assert set(REQUEST_TRANSITIONS) - {None} == set(REQUEST_STATUSES)
    for moves in REQUEST_TRANSITIONS.values():
        assert set(moves) <= set(REQUEST_STATUSES)


@pytest.mark.parametrize("status", ["played", "vetoed", "expired"])
def test_finished_requests_never_move_again(status):
    for to_status in REQUEST_STATUSES:
        assert not can_move(_request(status), to_status)
        with pytest.raises(IllegalRequestMove):
            move_request(_request(status), to_status, now=NOW)


def test_a_new_request_can_only_start_pending():
    fresh = SongRequest(public_id="r1")
    assert fresh.status is None
    move_request(fresh, "pending", now=NOW)
    assert fresh.status == "pending"
    with pytest.raises(IllegalRequestMove):
        move_request(SongRequest(public_id="r2"), "accepted", now=NOW)


def test_accept_then_undo_keeps_the_accept_time_only_while_accepted():
    song_request = _request("pending")
    move_request(song_request, "accepted", now=NOW)
    assert (song_request.status, song_request.accepted_at) == ("accepted", NOW)
    move_request(song_request, "pending", now=NOW)
    assert (song_request.status, song_request.accepted_at) == ("pending", None)


def test_playing_then_played_stamps_the_times_once():
    song_request = _request("accepted", accepted_at=NOW - timedelta(minutes=5))
    move_request(song_request, "playing", now=NOW)
    assert song_request.playing_at == NOW and song_request.accepted_at == NOW - timedelta(minutes=5)
    later = NOW + timedelta(minutes=3)
    move_request(song_request, "played", now=later)
    assert (song_request.playing_at, song_request.closed_at) == (NOW, later)


def test_played_straight_from_the_queue_counts_as_played_now():
    song_request = _request("pending")
    move_request(song_request, "played", now=NOW)
    assert (song_request.playing_at, song_request.closed_at) == (NOW, NOW)


def test_a_veto_keeps_its_reason_and_an_expiry_none():
    vetoed, expired = _request("accepted"), _request("pending")
    move_request(vetoed, "vetoed", reason="Not right for this venue", now=NOW)
    move_request(expired, "expired", reason="not played before the set ended", now=NOW)
    assert (vetoed.veto_reason, vetoed.closed_at) == ("Not right for this venue", NOW)
    assert (expired.veto_reason, expired.closed_at) == (None, NOW)


def test_a_song_playing_cannot_be_vetoed_or_go_back():
    for to_status in ("vetoed", "expired", "pending", "accepted"):
        assert not can_move(_request("playing"), to_status)


def test_which_requests_a_set_end_expires():
    assert set(statuses_that_move_to("expired")) == {"pending", "accepted"}
