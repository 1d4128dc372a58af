"""The DJ's dashboard on a tablet (1180×820) with a long queue, kept current
by small pushes (docs/live.md): a vote that changes the order, a new paid
request, accept, veto, play and played from another session each reach it as
a message of a few KB with the rows it touched, and the dashboard shows
exactly what a reload would. A message lost on the way (dropped between the
server and the page) is noticed at the next one: the page asks for a
snapshot and shows the truth again."""
import re
import secrets

import pytest
from playwright.sync_api import expect

from app.extensions import db
from app.live.render import check, dj_parts
from app.services.live import publish_after_commit
from app.services.requests import actions as dj_actions
from tests.e2e.conftest import TABLET, screenshot as full_screenshot
from tests.factories import PASSWORD, device, paid_request
from tests.live_support import DJTablet, crowd, vote
from tests.payment_support import wait_for

pytestmark = pytest.mark.browser

WAITING = 24  # on top of the night's three


@pytest.fixture
def night(night, app_ctx):
    night.attach()
    night.extra = crowd(night, WAITING)
    return night


class Line:
    """The dashboard's socket, through Playwright between the page and the
    server: it keeps what the server sent and what the page asked, and can
    lose on the way the next message that carries a given request's row."""

    def __init__(self, page):
        self.received: list[str] = []
        self.asked: list[str] = []
        self.lose: str | None = None  # a request's public id
        page.route_web_socket(re.compile(r"/live/events/"), self.route)

    def route(self, ws):
        server = ws.connect_to_server()

        def from_page(message):
            self.asked.append(message)
            server.send(message)

        def from_server(message):
            if self.lose and f'data-request="{self.lose}" id="dj-row-' in message:
                self.lose = None
                return
            self.received.append(message)
            ws.send(message)

        ws.on_message(from_page)
        server.on_message(from_server)


def fan_votes(app, event, request) -> None:
    """A fan's phone (its own cookies, a request context of its own) votes."""
    with app.app_context():
        assert vote(app.test_client(), event.public_id, request.public_id).status_code == 200


def positions(page) -> list[str]:
    return page.locator("#dj-requests .dj-row .queue-pos").all_text_contents()


def order(page) -> list[str]:
    return page.locator("#dj-requests .dj-row").evaluate_all("rows => rows.map(r => r.dataset.request)")


def reload_view(app, night) -> DJTablet:
    """What a fresh page would show (the server's whole view)."""
    db.session.rollback()
    tablet = DJTablet()
    with app.test_request_context("/"):
        tablet.apply("0 -\n" + dj_parts(db.session.merge(night.set)))
    return tablet


def test_the_dashboard_follows_every_change_in_small_pushes_and_recovers_a_lost_one(app, night, live_server,
                                                                                     open_page):
    page, errors = open_page(TABLET)
    line = Line(page)
    page.goto(f"{live_server}/login?next=/dj/")
    page.get_by_label("Email").fill(night.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".conn-status")).to_have_text("Live")
    r, extra, event = night.requests, night.extra, night.event
    dj_id = event.dj_id

    def row(request):
        return page.locator(f'#dj-requests .dj-row[data-request="{request.public_id}"]')

    def shows_the_truth():
        """The rows a reload would show, in its order, numbered 1, 2, 3 …"""
        wait_for(lambda: order(page) == list(reload_view(app, night).rows), message="the order a reload shows")
        assert positions(page) == [str(n) for n in range(1, len(order(page)) + 1)]
        now = reload_view(app, night)  # and every part and row as it shows them: the page's own check agrees
        assert page.evaluate("BMM.shownCheck()") == check(now.parts, now.rows)

    expect(page.locator("#dj-requests .dj-row")).to_have_count(WAITING + 3)
    snapshots = len(line.received)

    # A fan votes for the newest request: it moves up to third (after the accepted one and 2 votes).
    newest = extra[-1]
    fan_votes(app, event, newest)
    expect(row(newest).locator(".queue-pos")).to_have_text("3")
    expect(row(newest)).to_contain_text("▲ 1")
    shows_the_truth()

    # A new paid request appears at the end, marked new, and the count goes up.
    newcomer = paid_request(night.set, night.tracks[WAITING], device("newcomer"))
    publish_after_commit(event.public_id, "request_created", request=newcomer.public_id)
    db.session.commit()
    expect(row(newcomer).locator(".dj-new-badge")).to_have_text("New")
    expect(row(newcomer).locator(".queue-pos")).to_have_text(str(WAITING + 4))
    expect(page.locator("#dj-count")).to_have_text(f"{WAITING + 4} waiting · 1 accepted")
    shows_the_truth()

    # Another session (a second tablet) accepts, vetoes, plays and marks played.
    dj_actions.accept(dj_id, extra[3].public_id, key=secrets.token_hex(8))
    expect(row(extra[3]).locator(".badge--accepted")).to_be_visible()
    expect(row(extra[3]).locator(".queue-pos")).to_have_text("2")
    dj_actions.veto(dj_id, extra[4].public_id, reason="Not right for this venue", key=secrets.token_hex(8))
    expect(row(extra[4])).to_have_count(0)
    dj_actions.start_playing(dj_id, r["Despacito"].public_id, key=secrets.token_hex(8))
    expect(page.locator("#dj-now-playing .np-title")).to_have_text("Despacito")
    expect(row(r["Despacito"])).to_have_count(0)
    shows_the_truth()
    full_screenshot(page, "dj-tablet-small-pushes")
    dj_actions.mark_played(dj_id, r["Despacito"].public_id, key=secrets.token_hex(8))
    expect(page.locator("#dj-now-playing .np-title")).to_have_text("Nothing requested is playing")
    shows_the_truth()

    # Every change came as a small message with only the rows it touched (a whole list
    # only as the answer to a resync the page asked for, as it does when it regains focus).
    pushes = [m for m in line.received[snapshots:] if 'id="dj-delta"' in m]
    assert len(pushes) >= 4 and all(len(m.encode()) < 10_000 for m in pushes), [len(m.encode()) for m in pushes]
    assert all(len(re.findall(r'<li class="queue-item dj-row', m)) <= 1 for m in pushes)
    assert len(line.received) - snapshots - len(pushes) <= line.asked.count("resync")
    resyncs = line.asked.count("resync")

    # A message is lost on the way: the vote's. The page shows the old count until the next
    # message, which does not follow on from what it has: it asks for a snapshot.
    voted = extra[10]
    line.lose = voted.public_id
    fan_votes(app, event, voted)
    wait_for(lambda: page.evaluate("true") and line.lose is None, message="the vote's message, lost")
    expect(row(voted)).to_contain_text("▲ 0")
    dj_actions.accept(dj_id, extra[12].public_id, key=secrets.token_hex(8))
    expect(row(voted)).to_contain_text("▲ 1")
    assert line.asked.count("resync") > resyncs
    expect(row(extra[12]).locator(".badge--accepted")).to_be_visible()
    shows_the_truth()
    screenshot_from_top(page, "dj-tablet-small-pushes-recovered")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert errors == []


def screenshot_from_top(page, name: str) -> None:
    page.evaluate("window.scrollTo(0, 0)")
    full_screenshot(page, name, full_page=False)
