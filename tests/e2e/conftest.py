"""Browser fixtures: the app served on a real port, and Debian's Chromium via Playwright."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.factories import PASSWORD

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"
# Screenshots are for a person to look at, not assertions: `make screenshots`
# (BMM_SCREENSHOTS=1) saves them; `make test` leaves them out, since a capture
# costs up to a second a page and headless Chromium on a loaded machine now and
# then refuses one ("Unable to capture screenshot"), failing a test whose
# behaviour passed.
TAKE_SCREENSHOTS = os.environ.get("BMM_SCREENSHOTS") == "1"
PHONE = {"width": 390, "height": 844}
TABLET = {"width": 1180, "height": 820}
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage",  # containers often give /dev/shm only 64 MB
]


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is not installed; run the suite with `make test`")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def open_page(browser):
    """open_page(viewport, is_mobile) -> (page, errors): errors collects console errors and page errors."""
    contexts = []

    def make(viewport: dict, mobile: bool = False):
        context = browser.new_context(viewport=viewport, is_mobile=mobile, has_touch=mobile,
                                      device_scale_factor=2 if mobile else 1)
        contexts.append(context)
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        return page, errors

    yield make
    for context in contexts:
        context.close()


def screenshot(page, name: str, full_page: bool = True) -> Path | None:
    """Save the whole page (or, full_page=False, what the screen shows now; or,
    given a locator, that element) as artifacts/screenshots/<name>.png when
    screenshots are asked for."""
    if not TAKE_SCREENSHOTS:
        return None
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    if hasattr(page, "bounding_box"):  # a Locator
        page.screenshot(path=str(path))
    else:
        page.screenshot(path=str(path), full_page=full_page)
    return path


def sign_in(page, base: str, email: str, next_path: str, password: str = PASSWORD) -> None:
    """Sign in through the form and land on `next_path`."""
    page.goto(f"{base}/login?next={next_path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}{next_path}")


def no_horizontal_scroll(page) -> None:
    """Nothing wider than the screen. Against the viewport's width, not innerWidth:
    a phone (mobile emulation) widens its layout to fit content that overflows,
    and innerWidth grows with it."""
    width = page.viewport_size["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width, "horizontal scroll"


# Each visible <select> whose chosen option's text is wider than the box
# leaves for it (its width less the padding and the arrow): the label it cuts.
CLIPPED_SELECTS_JS = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  return [...document.querySelectorAll('select')].filter(s => s.offsetParent !== null).flatMap(s => {
    const style = getComputedStyle(s), option = s.options[s.selectedIndex];
    if (!option) return [];
    ctx.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
    const room = s.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight) - 16;
    return ctx.measureText(option.text.trim()).width > room ? [`${s.name || s.id}: ${option.text.trim()}`] : [];
  });
}"""


def no_clipped_selects(page) -> None:
    """Every drop-down shows its whole chosen option (at this viewport, with each of its options chosen)."""
    clipped = page.evaluate("""(js) => {
      const find = eval(js), out = new Set();
      for (const s of document.querySelectorAll('select')) {
        const was = s.selectedIndex;
        for (let i = 0; i < s.options.length; i++) { s.selectedIndex = i; find().forEach(x => out.add(x)); }
        s.selectedIndex = was;
      }
      return [...out];
    }""", CLIPPED_SELECTS_JS)
    assert clipped == [], f"drop-downs cut their label: {clipped}"


# Each row of the fan's queue: position | the song | its vote button, side by side and apart.
QUEUE_ROWS_OUT_OF_LINE_JS = """
() => [...document.querySelectorAll('#queue .queue-item')].filter((li) => {
  const box = (sel) => { const el = li.querySelector(sel); return el && el.getBoundingClientRect(); };
  const pos = box('.queue-pos'), track = box('.queue-track'), vote = box('.vote-button');
  if (!pos || !track || !vote) return true;
  const apart = pos.right <= track.left + 0.5 && track.right <= vote.left + 0.5;
  const level = pos.top < track.bottom && vote.top < track.bottom && track.top < vote.bottom;
  return !(apart && level);
}).map((li) => li.dataset.request)
"""


def queue_rows_in_line(page) -> None:
    """The queue reads as a list of rows: no position over a title, no vote button below its song."""
    assert page.locator("#queue .queue-item").count() > 0, "no queue to look at"
    assert page.evaluate(QUEUE_ROWS_OUT_OF_LINE_JS) == [], "queue rows out of line"


def live_settled(page, app, event_public_id: str) -> None:
    """Until the page has applied the event's newest live message: every part
    a message swaps (the queue, the tip prompt) is then the element that
    stays, not one the next message replaces under a click."""
    from playwright.sync_api import expect

    from app.services.live import current_position

    with app.app_context():
        seq = current_position(event_public_id).seq
    expect(page.locator("html")).to_have_attribute("data-live-seq", str(seq), timeout=15000)
