"""The playground in a real browser: Debian's headless Chromium driven by Playwright.

Skipped, with the reason, where /usr/bin/chromium or Playwright is missing; `.ci/run` installs
Chromium and then requires them to run. The spiral test also takes the README's screenshot,
docs/images/playground.png, and writes it there when DELTAPROP_WRITE_SCREENSHOT is set.
"""

import os
import re
import socket
import threading
import time
from pathlib import Path

import pytest

from deltaprop.core.notation import Style

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
SCREENSHOT = ROOT / "docs" / "images" / "playground.png"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"no Chromium at {CHROMIUM}"),
]
if os.environ.get("DELTAPROP_BROWSER_TESTS") == "required":  # set by .ci/run
    import playwright.sync_api as sync_api
else:
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed")


@pytest.fixture(scope="module")
def server():
    """The playground app on uvicorn on a free port of 127.0.0.1, in a thread."""
    import uvicorn

    from deltaprop.playground.server import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert time.monotonic() < deadline, "the playground server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with sync_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh profile each run
            executable_path=CHROMIUM,
            args=FLAGS,
            headless=True,
            viewport={"width": 1360, "height": 1000},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser, server):
    """A page whose every request (and WebSocket) is recorded: all must go to 127.0.0.1."""
    page = browser.new_page()
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("websocket", lambda ws: requests.append(ws.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.server = server
    yield page
    page.close()
    assert not errors, errors
    assert requests, "the page made no request at all"
    local = re.compile(rf"^(https?|wss?)://127\.0\.0\.1:{server.rsplit(':', 1)[1]}|^(data|blob):")
    assert all(local.match(url) for url in requests), [u for u in requests if not local.match(u)]


def wait_state(page):
    page.wait_for_function("window.playground && window.playground.state !== null")


def epoch(page) -> int:
    return int(page.inner_text("#epoch").split()[1])


def test_the_classic_step_shows_the_deltas_deltaprop_explain_prints(page):
    import deltaprop as dp
    from deltaprop.explain import classic_example

    page.goto(page.server + "#example=classic")
    wait_state(page)
    page.wait_for_function("window.playground.state.settings.example === 'classic'")
    page.click("#step")
    page.wait_for_selector("#delta-table")
    net, x, t, lr = classic_example()
    trace = dp.explain(net, x, t, dp.SGD(lr=lr))
    style = Style("text")
    shown = {
        row.query_selector("td").inner_text(): row.query_selector_all("td")[1].inner_text()
        for row in page.query_selector_all("#delta-table tr[data-unit]")
    }
    expected = {
        f"δ_{style.unit(ly.index, j)}": style.num(d)
        for ly in trace.layers
        for j, d in enumerate(ly.delta)
    }
    assert (
        shown
        == expected
        == {"δ_o1": "−0.1385", "δ_o2": "0.0381", "δ_h1": "−0.008771", "δ_h2": "−0.009954"}
    )
    changes = [
        tr.inner_text().split("\t") for tr in page.query_selector_all("#change-table tr")[1:]
    ]
    assert ["w_o1,h1", "0.08217", "−0.04108"] in changes
    assert ["b_h2", "0.009954", "−0.004977"] in changes
    assert page.inner_text("#epoch") == "epoch 1"  # the example is the whole training set
    page.click("#unit-h1")
    text = page.inner_text("#inspector-body")
    assert "δ_h1 = h1(1 − h1)(δ_o1 w_o1,h1 + δ_o2 w_o2,h1)" in text and "−0.008771" in text
    page.dispatch_event("path.hit[data-layer='2'][data-j='0'][data-i='0']", "click")
    text = page.inner_text("#inspector-body")
    assert "w_o1,h1 ← w_o1,h1 + η δ_o1 h1 = 0.4 + 0.5 × (−0.1385) × 0.5933 = 0.3589" in text
    page.keyboard.press("ArrowRight")  # → is Step
    page.wait_for_function("document.querySelector('#epoch').textContent === 'epoch 2'")


def test_a_spiral_plays_pauses_and_holds(page, tmp_path):
    page.goto(
        page.server
        + "#dataset=spiral&shape=2-8-8-2&activation=tanh&optimizer=momentum&lr=0.1&seed=0&speed=10"
    )
    wait_state(page)
    page.wait_for_function("window.playground.state.data.name === 'spiral'")
    assert page.evaluate("location.hash").startswith("#dataset=spiral")
    page.click("#play")
    page.wait_for_function(
        "parseInt(document.querySelector('#epoch').textContent.split(' ')[1]) >= 300",
        timeout=60_000,
    )
    page.click("#pause")
    page.wait_for_function("!window.playground.running")
    held = epoch(page)
    page.wait_for_timeout(600)
    assert epoch(page) == held
    page.keyboard.press(" ")  # space plays ...
    page.wait_for_function(
        f"parseInt(document.querySelector('#epoch').textContent.split(' ')[1]) > {held}"
    )
    page.keyboard.press(" ")  # ... and pauses
    page.wait_for_function("!window.playground.running")
    page.click("#step")
    page.wait_for_selector("#delta-table")
    page.click("#unit-h2\\:3")
    page.wait_for_selector("#inspect-delta")
    png = page.screenshot(clip={"x": 0, "y": 0, "width": 1360, "height": 900})
    # The README's screenshot is rewritten only when asked: a test run leaves the checkout as
    # it found it.
    asked = os.environ.get("DELTAPROP_WRITE_SCREENSHOT")
    _write_small_png(png, SCREENSHOT if asked else tmp_path / "playground.png")


def _write_small_png(png: bytes, path: Path) -> None:
    """The screenshot in 256 colours (a third of the size, the same to the eye)."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    image.quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def test_a_bad_csv_gets_the_readers_message_and_the_page_goes_on(page, tmp_path):
    page.goto(page.server)
    wait_state(page)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,label\n1,2,x\n3,oops,y\n", encoding="utf-8")
    page.set_input_files("#csv", str(bad))
    page.wait_for_selector("#message:not([hidden])")
    message = page.inner_text("#message")
    assert message.startswith("bad.csv") and "line 3" in message and str(tmp_path) not in message
    page.click("#step")  # still usable, on the data it had
    page.wait_for_selector("#delta-table")
