"""The queue index cached with the public live parts comes back as it went in (app/live/render.public_at)."""
import json

from app.services.live.state import Entry, QueueIndex


def test_a_queue_index_survives_the_cache_as_json():
    index = QueueIndex("ev1", (3, 4), (Entry(10, "r10", 7, 1, 0), Entry(11, "r11", 8, 2, 215)),
                       {"device-a": 7, "device-b": 9})
    back = QueueIndex.from_data(json.loads(json.dumps(index.to_data())))
    assert back == index
    assert back.device_id("device-b") == 9 and back.by_request[11].wait_s == 215
    assert back.public_ids(frozenset({11, 10})) == ["r10", "r11"]
