"""Frames per second the playground page reaches, and epochs per second behind them.

Starts `deltaprop playground` in its own process, opens the page in headless Chromium
(Debian's /usr/bin/chromium through Playwright, as the browser tests do), plays spiral 2-8-8-2
(tanh, SGD with momentum, batch size 10, 200 training examples) and counts the frames the page
draws and the epochs they report, over a warm-up and then a measured window, for each speed
setting: 10 epochs a frame (what a learner watches) and "as fast as it goes" (speed=0). Also
measures the same training with no page at all (Session.train_for in this process) for the
epochs per second the engine reaches alone. A benchmark, not a test: it prints numbers.

    python benchmarks/playground_fps.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

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
RUN = "dataset=spiral&shape=2-8-8-2&activation=tanh&optimizer=momentum&lr=0.1&seed=0"


def _server(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "deltaprop", "playground", "--no-browser", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline()
    if not line.startswith("http://"):
        raise SystemExit(f"the playground did not start: {line!r}")
    return proc


def _in_page(
    page, url: str, speed: int, warmup: float, seconds: float
) -> tuple[float, float, float]:
    page.goto(f"{url}#{RUN}&speed={speed}")
    page.wait_for_function(
        "window.playground && window.playground.state && "
        f"window.playground.state.settings.speed === {speed}"
    )
    page.click("#play")
    page.wait_for_timeout(int(warmup * 1000))
    # Frames drawn (the page draws at the screen's pace and skips stale ones) and received.
    read = (
        "[window.playground.frames, window.playground.received, window.playground.frame.epoch,"
        " performance.now()]"
    )
    f0, r0, e0, t0 = page.evaluate(read)
    page.wait_for_timeout(int(seconds * 1000))
    f1, r1, e1, t1 = page.evaluate(read)
    page.click("#pause")
    elapsed = (t1 - t0) / 1000
    return (f1 - f0) / elapsed, (r1 - r0) / elapsed, (e1 - e0) / elapsed


def _engine_alone(seconds: float) -> float:
    from deltaprop.playground.session import Session
    from deltaprop.playground.settings import parse_settings

    values = dict(pair.split("=") for pair in RUN.split("&"))
    session = Session(parse_settings(values))
    session.train_for(1.0)  # loads (or compiles) the kernels
    start, epochs = time.perf_counter(), session.epoch
    session.train_for(seconds)
    return (session.epoch - epochs) / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="measured window per run")
    parser.add_argument("--port", type=int, default=8791)
    args = parser.parse_args()
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"needs Chromium at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    server = _server(args.port)
    url = f"http://127.0.0.1:{args.port}/"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1360, "height": 1000})
            print(f"spiral 2-8-8-2, batch 10, 200 training examples; {args.seconds:g} s each")
            for speed, label in ((10, "10 epochs/frame"), (0, "as fast as it goes")):
                drawn, received, eps = _in_page(page, url, speed, 3.0, args.seconds)
                print(
                    f"  page, speed {label:<18}: {drawn:5.1f} frames/s drawn, {received:5.1f} "
                    f"received, {eps:7.0f} epochs/s"
                )
            browser.close()
    finally:
        server.terminate()
        server.wait(10)
    print(f"  engine alone (no page): {_engine_alone(args.seconds):7.0f} epochs/s")
    print(f"  (load average while measuring: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
