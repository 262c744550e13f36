"""The HTTP sink's live page in a real headless browser (Debian's chromium and
chromium-driver, driven by selenium): it loads, receives poses over /events, and draws
them (canvas pixels in each person's ID colour). Skipped, with the reason, where chromium,
its driver or selenium is absent. Also the stream itself, without a browser."""
import json
import os
import shutil
import threading
import urllib.request

import numpy as np
import pytest

from openpose_plus.edge.draw import id_colour
from openpose_plus.edge.poses import Poses
from openpose_plus.edge.sinks import HttpSink, Result
from openpose_plus.edge.skeleton import COCO18
from openpose_plus.edge.synthetic.scene import MovingScene
from openpose_plus.edge.tracking import PoseTracker, TrackParams

W, H = 320, 240


class Feeder:
    """Tracked walkers handed to the sink every 40 ms on a thread, until stopped."""

    def __init__(self, sink: HttpSink) -> None:
        self.sink, self.stop = sink, threading.Event()
        self.scene = MovingScene(W, H, 2, seed=3, crossing=True, person_height=(0.5 * H, 0.6 * H))
        self.tracker = PoseTracker(COCO18, TrackParams(min_hits=1))
        self.ids = set()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        i = 0
        image = np.full((H, W, 3), 30, np.uint8)
        while not self.stop.is_set():
            j = i % 40
            kp = self.scene.keypoints(j if j < 20 else 39 - j)  # to and fro: the people stay in view
            kp[..., 2] = 0.9
            poses = self.tracker.update(Poses(kp, np.full(len(kp), 0.9, np.float32), COCO18), i / 25.0)
            self.ids.update(poses.ids.tolist())
            self.sink.handle(Result(i, 100.0 + i / 25.0, poses, image.copy(), COCO18,  # the sink draws on it
                                    {"infer": 4.0, "group": 0.5, "track": 0.02}))
            i += 1
            self.stop.wait(0.04)

    def __enter__(self) -> "Feeder":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)


@pytest.fixture
def sink():
    s = HttpSink("127.0.0.1", 0)
    s.open()
    yield s
    s.close()


def test_the_page_and_the_stream_without_a_browser(sink):
    base = "http://127.0.0.1:%d" % sink.port
    page = urllib.request.urlopen(base + "/", timeout=5).read().decode()
    assert "EventSource(\"/events\")" in page and "<canvas" in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from outside
    with Feeder(sink), urllib.request.urlopen(base + "/events", timeout=10) as stream:
        assert stream.headers["Content-Type"] == "text/event-stream"
        events, data, kind = [], [], "message"
        while len([e for e in events if e[0] == "message"]) < 3:
            line = stream.readline().decode().rstrip("\n")
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
            elif line == "" and data:
                events.append((kind, json.loads("".join(data))))
                data, kind = [], "message"
    assert events[0][0] == "skeleton" and events[0][1]["parts"] == list(COCO18.parts)
    frame = events[-1][1]
    assert frame["size"] == [W, H] and frame["ms"]["track"] == 0.02
    assert len(frame["people"]) == 2 and {p["id"] for p in frame["people"]} <= {1, 2}


def _browser_or_skip():
    chromium = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "",
                                 shutil.which("chromium-browser") or "") if p and os.path.exists(p)), None)
    driver = shutil.which("chromedriver") or ("/usr/bin/chromedriver" if os.path.exists("/usr/bin/chromedriver")
                                              else None)
    if chromium is None or driver is None:
        pytest.skip("no chromium/chromedriver here (Debian: apt-get install chromium chromium-driver)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (the dev extra)")
    return webdriver, chromium, driver


def test_the_live_page_draws_tracked_people_in_a_browser(sink, tmp_path):
    webdriver, chromium, driver_path = _browser_or_skip()
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--user-data-dir=%s" % (tmp_path / "profile"), "--window-size=800,600"):
        options.add_argument(flag)
    # An explicit driver: selenium's own manager (which would look on the internet) is not asked.
    browser = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        with Feeder(sink) as feeder:
            browser.get("http://127.0.0.1:%d/" % sink.port)
            wait = WebDriverWait(browser, 30, poll_frequency=0.1)
            wait.until(lambda b: b.execute_script("return window.opp && window.opp.frames >= 10 && "
                                                  "window.opp.skeleton !== null"))
            # What the canvas shows: pixels per colour, counted in the page.
            counts = browser.execute_script("""
                const c = document.getElementById('overlay'), d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                const out = {};
                for (let i = 0; i < d.length; i += 4) if (d[i + 3] === 255) {
                  const k = d[i] + ',' + d[i + 1] + ',' + d[i + 2]; out[k] = (out[k] || 0) + 1; }
                return [c.width, c.height, out, window.opp.idColour(1), window.opp.trails.size,
                        document.getElementById('fps').textContent, document.getElementById('stages').textContent,
                        document.getElementById('state').textContent];
            """)
        width, height, colours, js_colour, trails, fps, stages, state = counts
        assert (width, height) == (W, H) and state == "live"
        for tid in (1, 2):
            rgb = "%d,%d,%d" % id_colour(tid)
            assert js_colour != "" and colours.get(rgb, 0) > 200, "person %d is not drawn in its colour" % tid
        assert "rgb(%d,%d,%d)" % id_colour(1) == js_colour  # one colour rule on both sides
        assert trails == 2 and float(fps) > 5 and "infer" in stages and "track" in stages
    finally:
        browser.quit()
