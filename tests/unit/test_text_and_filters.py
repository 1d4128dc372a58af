from datetime import datetime, timezone

from app.core.templating import duration, local_time, rands
from app.services.common.text import fold


def test_fold_ignores_case_accents_and_punctuation():
    assert fold("Beyoncé") == "beyonce"
    assert fold("  SEÑORITA!! ") == "senorita"
    assert fold("Don't   Stop") == "don t stop"


def test_money_is_shown_in_rand():
    assert rands(2000) == "R20"
    assert rands(2050) == "R20.50"
    assert rands(123456) == "R1 234.56"


def test_times_are_shown_in_the_event_zone():
    noon_utc = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
    assert local_time(noon_utc, "Africa/Johannesburg", "%H:%M") == "14:00"
    assert duration(201) == "3:21"
