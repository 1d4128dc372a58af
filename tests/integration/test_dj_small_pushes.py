"""The DJ's small pushes (docs/live.md): after its snapshot, the dashboard's
socket gets what changed, not the list: a vote, a new request, an accept, a
veto, a play and a played each send the rows they touched (and the order, as
ids, when it changed), and the tablet's view stays exactly the server's."""
from __future__ import annotations

import re
import secrets
import threading

import pytest

from app.extensions import db
from app.live.render import dj_parts
from app.services.live import publish_after_commit
from app.services.requests import actions as dj_actions
from tests.conftest import sign_in
from tests.factories import device, paid_request
from tests.live_support import DJTablet, SocketReader, crowd, seq_of, vote

WAITING = 30  # more on top of the night's own three


@pytest.fixture
def night(night, app_ctx):
    night.attach()
    night.extra = crowd(night, WAITING)
    return night


def dashboard_socket(app, live_server, night, view: str | None = "dj") -> SocketReader:
    client = app.test_client()
    with app.app_context():
        assert sign_in(client, night.email).status_code == 303
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={client.get_cookie(app.config['SESSION_COOKIE_NAME']).value}"
    url = live_server.replace("http://", "ws://") + f"/live/events/{night.event.public_id}"
    return SocketReader(url + (f"?view={view}" if view else ""), headers={"Cookie": cookie})


def truth(app, night) -> DJTablet:
    """The whole view as a snapshot shows it now."""
    tablet = DJTablet()
    with app.test_request_context("/"):
        tablet.apply("0 -\n" + dj_parts(db.session.merge(night.set)))
    return tablet


def rows_in(message: str) -> list[str]:
    return DJTablet.ROW.findall(message)


def test_each_change_sends_the_dj_only_the_rows_it_touched_and_the_view_stays_exact(app, night, live_server):
    r, extra = night.requests, night.extra
    reader = dashboard_socket(app, live_server, night)
    tablet = DJTablet()
    seen = 0

    def next_message() -> str:
        nonlocal seen
        message = reader.wait_for(lambda m: reader.messages.index(m) >= seen)
        seen = reader.messages.index(message) + 1
        tablet.apply(message)
        return message

    def settled(message: str) -> None:
        """The tablet shows exactly what a snapshot would, and knows it."""
        db.session.rollback()
        now = truth(app, night)
        assert tablet.exact, "the tablet would ask for a snapshot"
        assert (tablet.rows, tablet.parts) == (now.rows, now.parts)

    try:
        snapshot = next_message()
        assert len(rows_in(snapshot)) == WAITING + 3 and 'id="dj-requests"' in snapshot
        assert 'id="queue"' not in snapshot  # the fans' parts are not the dashboard's
        settled(snapshot)

        # A fan votes for the newest request: that row (and the new order, as ids) alone.
        newest = extra[-1]
        fan = app.test_client()
        assert vote(fan, night.event.public_id, newest.public_id).status_code == 200
        voted = next_message()
        assert [request_id for request_id, _ in rows_in(voted)] == [newest.public_id]
        assert 'id="dj-requests"' not in voted
        order = re.search(r'data-order="([^"]*)"', voted).group(1).split()
        assert order.index(newest.public_id) < order.index(extra[0].public_id)  # it moved up
        assert len(voted.encode()) < 10_000
        settled(voted)

        # A new paid request: its row, the count, the earnings.
        newcomer = paid_request(night.set, night.tracks[WAITING], device("newcomer"))
        publish_after_commit(night.event.public_id, "request_created", request=newcomer.public_id)
        db.session.commit()
        arrived = next_message()
        assert [request_id for request_id, _ in rows_in(arrived)] == [newcomer.public_id]
        assert f"{WAITING + 4} waiting" in arrived and 'id="dj-earnings"' in arrived
        settled(arrived)

        # The DJ (another tablet): accept, veto, play, played. Each sends the one row, or none.
        dj_id = night.event.dj_id
        dj_actions.accept(dj_id, extra[5].public_id, key=secrets.token_hex(8))
        accepted = next_message()
        assert [request_id for request_id, _ in rows_in(accepted)] == [extra[5].public_id]
        assert "Undo accepting" in accepted
        settled(accepted)

        dj_actions.veto(dj_id, extra[6].public_id, reason="Not right for this venue", key=secrets.token_hex(8))
        vetoed = next_message()
        assert rows_in(vetoed) == [] and extra[6].public_id not in tablet.rows
        settled(vetoed)

        dj_actions.start_playing(dj_id, r["Despacito"].public_id, key=secrets.token_hex(8))
        playing = next_message()
        assert rows_in(playing) == [] and 'id="dj-now-playing"' in playing and "Despacito" in playing
        settled(playing)

        dj_actions.mark_played(dj_id, r["Despacito"].public_id, key=secrets.token_hex(8))
        played = next_message()
        assert rows_in(played) == [] and "Nothing requested is playing" in played
        settled(played)
        for message in (voted, arrived, accepted, vetoed, playing, played):
            assert seq_of(message) > seq_of(snapshot) and len(message.encode()) < 10_000
    finally:
        reader.close()


def test_a_tablet_that_missed_a_message_knows_it(app, night, live_server):
    reader = dashboard_socket(app, live_server, night)
    try:
        tablet = DJTablet()
        snapshot = reader.wait_for(lambda m: True)
        tablet.apply(snapshot)
        fan = app.test_client()
        messages = []
        for request in night.extra[-2:]:  # two votes, two messages
            assert vote(fan, night.event.public_id, request.public_id).status_code == 200
            messages.append(reader.wait_for(lambda m: m is not snapshot and request.public_id in dict(rows_in(m))))
        first, second = messages
        assert seq_of(second) > seq_of(first)
        tablet.apply(second)  # the first never arrived
        assert not tablet.exact  # so the page asks for a snapshot: the whole list again
    finally:
        reader.close()


def test_a_snapshot_on_resync_is_the_whole_list(app, night, live_server):
    reader = dashboard_socket(app, live_server, night)
    try:
        reader.wait_for(lambda m: True)
        reader.ws.send("resync")
        again = reader.wait_for(lambda m: reader.messages.index(m) > 0)
        assert len(rows_in(again)) == WAITING + 3 and 'id="dj-requests"' in again
    finally:
        reader.close()


def test_the_dj_on_the_fans_page_gets_what_fans_get(app, night, live_server):
    reader = dashboard_socket(app, live_server, night, view=None)
    try:
        snapshot = reader.wait_for(lambda m: True)
        assert 'id="queue"' in snapshot and 'id="dj-requests"' not in snapshot
    finally:
        reader.close()


def test_with_the_socket_up_an_actions_answer_is_the_toast_alone(app, night):
    client = app.test_client()
    with app.app_context():
        assert sign_in(client, night.email).status_code == 303
    with app.app_context():  # a request of its own, as in a real server (nothing cached in `g`)
        token = re.search(r'"X-CSRFToken": "([^"]+)"', client.get("/dj/").get_data(as_text=True)).group(1)
    url = f"/dj/requests/{night.extra[0].public_id}/accept"
    headers = {"HX-Request": "true", "X-CSRFToken": token}
    with app.app_context():
        live = client.post(url, headers={**headers, "Idempotency-Key": secrets.token_hex(8), "X-Live-Socket": "open"})
    body = live.get_data(as_text=True)
    assert live.status_code == 200 and "Accepted" in body
    assert 'id="dj-requests"' not in body and rows_in(body) == [] and len(body) < 2_000
    with app.app_context():  # polling (no socket): the answer carries the parts
        polled = client.post(f"/dj/requests/{night.extra[1].public_id}/accept",
                             headers={**headers, "Idempotency-Key": secrets.token_hex(8)})
    assert polled.status_code == 200 and len(rows_in(polled.get_data(as_text=True))) == WAITING + 3


def test_the_list_is_sent_whole_when_it_empties_or_appears_and_the_view_stays_exact(app, night):
    """Through the hub's own render (no socket): the first message it sends an
    event's dashboard is the whole view; a list that empties or appears again
    comes whole (it is short then); a fan's message never carries the DJ's
    parts, nor the DJ's the fans'."""
    from app.live.hub import Connection, Hub
    from app.services.live import Position

    event_id = night.event.public_id
    hub = Hub(app)
    dj, fan = Connection(event_id, None, is_dj=True), Connection(event_id, None)
    tablet = DJTablet()
    seq = iter(range(1, 100))

    def change() -> str:
        db.session.commit()
        render = threading.Thread(target=hub._broadcast, args=(event_id, Position(next(seq), "e"), [dj, fan]))
        render.start()  # in a thread of its own, as the hub's render thread (and app context) is
        render.join()
        assert 'id="dj-' not in fan.queue.get_nowait()
        message = dj.queue.get_nowait()
        assert 'id="queue"' not in message and 'id="viewer-state"' not in message
        tablet.apply(message)
        db.session.rollback()
        now = truth(app, night)
        assert tablet.exact and (tablet.rows, tablet.parts) == (now.rows, now.parts)
        return message

    first = change()
    assert len(rows_in(first)) == WAITING + 3 and 'id="dj-delta"' not in first
    for request in [*night.extra, night.requests["Despacito"], night.requests["Señorita"], night.requests["bad guy"]]:
        request.status = "played"
    emptied = change()
    assert 'id="dj-requests"' in emptied and "No requests waiting" in emptied and 'id="dj-delta"' in emptied
    newcomer = paid_request(night.set, night.tracks[WAITING], device("newcomer"))
    appeared = change()
    assert 'id="dj-requests"' in appeared and rows_in(appeared) == [(newcomer.public_id, tablet.rows[newcomer.public_id])]
    paid_request(night.set, night.tracks[WAITING + 1], device("second"))
    assert 'id="dj-requests"' not in change()
