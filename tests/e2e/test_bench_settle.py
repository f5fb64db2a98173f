"""The browser bench's settle (bench/capture.py RENDER_QUIET), run in Chromium on frame times made up here: a page is
settled at the end of its last long frame once it has drawn for a second without one, not at its first idle moment
(which missed the building tiles drawn one frame each after the network was idle)."""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import capture  # noqa: E402

FRAME = 16.0


def settled_at(page, frames: list[float], last: float, limit_ms: float = 2000):
    page.evaluate("frames => { window.__frames = frames; }", frames)
    return page.evaluate(capture.RENDER_QUIET, [last, capture.LONG_FRAME_MS, capture.RENDER_QUIET_MS, limit_ms])


def test_settled_is_the_end_of_the_last_long_frame_followed_by_a_quiet_second(page):
    page.set_content("<html><body>bench</body></html>")
    t = 1_000_000.0
    quick = [t + FRAME * i for i in range(1, 10)]
    first_long = quick[-1] + 1200  # a frame of 1.2 s: the first building tile drawn
    between = [first_long + FRAME * i for i in range(1, 5)]
    second_long = between[-1] + 900  # the next tile, in a frame of its own
    after = [second_long + FRAME * i for i in range(1, 70)]  # then more than a second of quick frames
    assert settled_at(page, quick + [first_long] + between + [second_long] + after, last=t) == second_long

    # A long frame before the last answer does not count: settled at the first frame after that answer.
    later = [first_long + FRAME * i for i in range(1, 80)]
    assert settled_at(page, quick + [first_long] + later, last=first_long + 1) == later[0]
    steady = [t + FRAME * i for i in range(1, 80)]
    assert settled_at(page, steady, last=t) == steady[0]


def test_a_page_still_drawing_long_frames_is_not_settled(page):
    page.set_content("<html><body>bench</body></html>")
    t = 1_000_000.0
    # A long frame and then under a second of frames: not settled (null once the limit has passed).
    frames = [t + FRAME, t + FRAME + 1500] + [t + FRAME + 1500 + FRAME * i for i in range(1, 20)]
    assert settled_at(page, frames, last=t, limit_ms=500) is None
