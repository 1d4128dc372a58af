"""When a fan is told about their own request (PRODUCT.md capability 7)."""
from app.services.live.notify import Seen, changes

TITLE, PRICE = "Despacito", 2000


def told(before, now):
    return [kind for kind, _ in changes(TITLE, PRICE, before, now)]


def test_nothing_is_announced_the_first_time_a_request_is_seen_or_when_nothing_changed():
    assert told(None, Seen("pending", 1, False)) == []
    assert told(Seen("pending", 4, False), Seen("pending", 4, False)) == []


def test_reaching_position_one_is_announced():
    notes = changes(TITLE, PRICE, Seen("pending", 2, False), Seen("accepted", 1, False))
    assert notes == [("position", "“Despacito” is next up: #1 in the queue.")]


def test_moves_of_more_than_three_places_are_announced_both_ways():
    assert changes(TITLE, PRICE, Seen("pending", 9, False), Seen("pending", 5, False)) == [
        ("position", "“Despacito” moved up to #5.")]
    assert changes(TITLE, PRICE, Seen("pending", 2, False), Seen("pending", 6, False)) == [
        ("position", "“Despacito” moved down to #6.")]
    assert told(Seen("pending", 8, False), Seen("pending", 5, False)) == []  # three places: not yet


def test_playing_vetoed_and_refunded_are_each_announced():
    assert told(Seen("accepted", 1, False), Seen("playing", 0, False)) == ["playing"]
    vetoed = changes(TITLE, PRICE, Seen("pending", 3, False), Seen("vetoed", 0, False))
    assert vetoed == [("vetoed", "The DJ couldn't play “Despacito”. Your R20 is being refunded.")]
    assert told(Seen("vetoed", 0, False), Seen("vetoed", 0, True)) == ["refunded"]
    assert told(Seen("pending", 2, False), Seen("expired", 0, True)) == ["refunded"]


def test_a_set_that_ended_before_the_song_played_says_so_with_the_refund():
    notes = changes(TITLE, PRICE, Seen("expired", 0, False), Seen("expired", 0, True))
    assert notes == [("refunded", "The set ended before “Despacito” played. Your R20 has been refunded.")]
