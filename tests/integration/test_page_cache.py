"""The fan pages' shared parts come from a cache keyed by what changes them,
fall back to each process when Redis is down, and unchanged pages and
fragments are answered 304 (app/services/common/cache.py, app/core/conditional.py)."""
from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from app.extensions import db
from app.live.render import CSRF_HOLE
from app.models import utcnow
from app.services.common import cache
from app.services.live import publish_after_commit
from tests.factories import create_event, device, paid_request

pytestmark = pytest.mark.night(tracks=6)


def queue_count(html: str) -> int:
    return int(re.search(r'class="muted queue-count">(\d+) request', html).group(1))


def queue_a_request(app, night, fan: str):
    """A paid request written straight to the database: nothing published yet."""
    with app.app_context():
        night.attach()
        paid_request(night.set, night.tracks.pop(), device(fan))
        db.session.commit()


def publish(app, event_id: str) -> None:
    """What every service does after a change a fan can see."""
    with app.app_context():
        publish_after_commit(event_id, "request_created")
        db.session.commit()


def test_the_queue_is_kept_until_the_event_publishes_a_change(app, night):
    event_id = night.event.public_id
    page = f"/e/{event_id}"
    client = app.test_client()
    before = queue_count(client.get(page).get_data(as_text=True))
    queue_a_request(app, night, "cache-fan-1")
    # The event's position did not move: every fan gets the parts made for it.
    assert queue_count(app.test_client().get(page).get_data(as_text=True)) == before
    publish(app, event_id)
    assert queue_count(app.test_client().get(page).get_data(as_text=True)) == before + 1


def test_the_cached_parts_carry_each_fans_own_csrf_token(app, night):
    page = f"/e/{night.event.public_id}"
    bodies = [app.test_client().get(page).get_data(as_text=True) for _ in range(2)]
    tokens = []
    for html in bodies:
        assert CSRF_HOLE not in html
        header_token = re.search(r'"X-CSRFToken": "([^"]+)"', html).group(1)
        form_tokens = set(re.findall(r'name="csrf_token" value="([^"]+)"', html))
        assert form_tokens == {header_token}  # the vote forms hold this session's token, not another fan's
        tokens.append(header_token)
    assert tokens[0] != tokens[1]


def test_a_fan_with_a_request_sees_it_on_the_page_before_anything_is_published(app, night):
    """A checkout just started publishes nothing; the fan's own parts are theirs at once."""
    page = f"/e/{night.event.public_id}"
    client = app.test_client()
    client.get(page)  # the device cookie; the shared parts are cached now
    from tests.live_support import device_cookie_of
    from app.core.devices import _serializer

    with app.app_context():
        night.attach()
        title = night.tracks[-1].title
        paid_request(night.set, night.tracks.pop(), device(_serializer().loads(device_cookie_of(client))),
                     status="pending")
        db.session.commit()
    html = client.get(page).get_data(as_text=True)
    mine = html[html.index('id="my-requests"'):html.index('id="my-requests"') + 3000]
    assert title in mine and "queue-item--mine" in html


def test_the_list_of_events_changes_at_once_when_an_event_is_added(app, night):
    client = app.test_client()
    assert "Brand New Night" not in client.get("/").get_data(as_text=True)
    with app.app_context():
        night.attach()
        create_event(night.dj, "Brand New Night", status="scheduled",
                     starts_at=utcnow() + timedelta(days=2))
        db.session.commit()
    assert "Brand New Night" in client.get("/").get_data(as_text=True)


def test_with_redis_down_the_pages_answer_from_each_process(app, night, app_on_own_redis, monkeypatch):
    other, server = app_on_own_redis
    page = f"/e/{night.event.public_id}"
    client = other.test_client()
    before = queue_count(client.get(page).get_data(as_text=True))
    # Without Redis no version can be read: what a process makes then lives
    # only FALLBACK_TTL (2 s); with none, each page is made again.
    monkeypatch.setattr(cache, "FALLBACK_TTL", 0.0)
    server.stop()
    response = client.get(page)
    assert response.status_code == 200 and queue_count(response.get_data(as_text=True)) == before
    assert client.get("/").status_code == 200
    queue_a_request(other, night, "cache-fan-2")
    assert queue_count(client.get(page).get_data(as_text=True)) == before + 1


def _in_threads(app, count: int, work) -> list:
    import threading

    results, start = [None] * count, threading.Barrier(count)

    def run(i):
        with app.app_context():
            start.wait()
            results[i] = work()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return results


def test_a_part_many_threads_ask_for_at_once_is_made_once(app, monkeypatch):
    import threading

    made, looked, arrived = [], [0], threading.Condition()
    local_get = cache._local.get

    def counting_get(key):
        with arrived:
            looked[0] += 1
            arrived.notify_all()
        return local_get(key)

    monkeypatch.setattr(cache._local, "get", counting_get)
    monkeypatch.setattr(cache, "MAKE_WAIT_SECONDS", 30.0)

    def make():
        made.append(1)
        with arrived:  # the render lasts until every asker has looked and missed
            arrived.wait_for(lambda: looked[0] >= 8, timeout=20)
        return {"html": "<p>queue</p>"}

    results = _in_threads(app, 8, lambda: cache.get_or_make("test-part", ("e1", 7), make, ttl=30))
    assert made == [1]
    assert results == [{"html": "<p>queue</p>"}] * 8


def test_a_part_another_process_is_making_is_read_from_its_copy(app, monkeypatch):
    import threading

    from app.extensions import redis_store

    monkeypatch.setattr(cache, "MAKE_WAIT_SECONDS", 30.0)  # however slow this machine: the wait ends with the copy

    key = cache.key_for("test-part", ("e1", 8))

    def make():
        raise AssertionError("made a second time")

    with app.app_context():
        client = redis_store.client
        client.set(f"{key}:making", 1, px=2000)  # another process claimed it
        threading.Timer(0.05, lambda: client.set(key, json.dumps({"html": "theirs"}), ex=30)).start()
        assert cache.get_or_make("test-part", ("e1", 8), make, ttl=30) == {"html": "theirs"}


def test_a_maker_that_never_delivers_is_waited_for_only_briefly(app, monkeypatch):
    from app.extensions import redis_store

    monkeypatch.setattr(cache, "MAKE_WAIT_SECONDS", 0.05)
    key = cache.key_for("test-part", ("e1", 9))
    with app.app_context():
        redis_store.client.set(f"{key}:making", 1, px=2000)  # claimed by a process that died
        assert cache.get_or_make("test-part", ("e1", 9), lambda: {"html": "mine"}, ttl=30) == {"html": "mine"}
        assert json.loads(redis_store.client.get(key)) == {"html": "mine"}  # shared with the others


# -- 304s ------------------------------------------------------------------------------------------------------

def test_an_unchanged_search_fragment_is_answered_304(app, night):
    client = app.test_client()
    url = f"/e/{night.event.public_id}?q=a"
    first = client.get(url, headers={"HX-Request": "true"})
    assert first.status_code == 200 and first.headers["Cache-Control"] == "private, no-cache"
    etag = first.headers["ETag"]
    again = client.get(url, headers={"HX-Request": "true", "If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b""
    other = client.get(f"/e/{night.event.public_id}?q=b", headers={"HX-Request": "true", "If-None-Match": etag})
    assert other.status_code == 200


def test_the_live_fragment_is_304_until_the_queue_changes(app, night):
    client = app.test_client()
    event_id = night.event.public_id
    url = f"/e/{event_id}/live"
    etag = client.get(url).headers["ETag"]
    assert client.get(url, headers={"If-None-Match": etag}).status_code == 304
    queue_a_request(app, night, "cache-fan-3")
    publish(app, event_id)
    changed = client.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_the_home_page_is_304_with_a_new_csrf_token_and_200_when_the_list_changes(app, night):
    client = app.test_client()
    first = client.get("/")
    etag = first.headers["ETag"]
    assert client.get("/", headers={"If-None-Match": etag}).status_code == 304
    with app.app_context():
        night.attach()
        night.event.name = "Renamed Night"
        db.session.commit()
    changed = client.get("/", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and "Renamed Night" in changed.get_data(as_text=True)


def test_a_page_with_a_tip_form_is_never_304(app, night):
    """Its one-time tip key would be used twice from a kept page."""
    client = app.test_client()
    page = client.get(f"/e/{night.event.public_id}")
    assert 'name="idempotency_key"' in page.get_data(as_text=True)
    assert "ETag" not in page.headers
