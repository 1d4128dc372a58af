"""Small shared helpers: the safe `next` redirect and number formatting."""
import pytest

from app.core.http import safe_next
from app.services.common.text import rands, thousands


@pytest.mark.parametrize("target", [
    "https://evil.example/", "//evil.example/x", "/\\evil.example", "http:/x", "javascript:alert(1)", "", None,
    "dj/library",
])
def test_safe_next_refuses_anything_but_a_path_on_this_site(target):
    assert safe_next(target, "/home") == "/home"


def test_safe_next_keeps_a_path_and_its_query():
    assert safe_next("/e/abc?q=despacito&page=2") == "/e/abc?q=despacito&page=2"


def test_safe_next_can_be_held_to_one_section():
    assert safe_next("/dj/library?genre=pop", "/dj/library", prefix="/dj/library") == "/dj/library?genre=pop"
    assert safe_next("/admin/", "/dj/library", prefix="/dj/library") == "/dj/library"


def test_thousands_and_rands_use_the_one_separator():
    assert thousands(1234567) == "1 234 567"
    assert thousands(999) == "999"
    assert rands(123456) == "R1 234.56"
    assert rands(1_000_000) == "R10 000"
    assert rands(None) == "–"
