"""The one progress line (edge/progress.py): terminal redraws, log lines, bytes, ETA, off."""
from __future__ import annotations

import io

from openpose_plus.edge.progress import Progress, format_duration


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_log_stream_gets_a_line_every_n_and_always_the_last():
    clock, out = Clock(), io.StringIO()
    p = Progress(4, label="step", every=2, stream=out, clock=clock)
    for i in range(1, 5):
        clock.t = float(i)
        p.update(i, loss=0.5 / i)
    p.close()  # the last count is already shown: nothing more
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in out.getvalue()
    assert lines[0] == "step 2/4 [############------------]  50% loss 0.25 eta 0:02"
    assert lines[1] == "step 4/4 [########################] 100% loss 0.125 eta 0:00"


def test_terminal_redraws_one_line_at_most_every_interval():
    clock, tty = Clock(), Tty()
    p = Progress(10, label="image", interval=1.0, stream=tty, clock=clock)
    for i in range(1, 11):
        clock.t = i * 0.5
        p.update(i)
    text = tty.getvalue()
    # drawn at 0.5 s, 1.5 s, 2.5 s, 3.5 s, 4.5 s, and at the end of the total
    assert text.count("\r\x1b[K") == 6 and text.count("\n") == 1 and text.endswith("100% eta 0:00\n")
    p.close()
    assert tty.getvalue() == text


def test_bytes_with_a_start_offset_show_their_rate_and_eta():
    clock, out = Clock(), io.StringIO()
    p = Progress(10_000_000, start=2_000_000, label="val2017.zip", unit="B", stream=out, clock=clock)
    clock.t = 2.0
    p.advance(2_000_000)  # 2 MB in 2 s after the resumed 2 MB: 1 MB/s, 6 MB left
    assert out.getvalue() == "val2017.zip 4.0 MB/10.0 MB [#########---------------]  40% 1.0 MB/s eta 0:06\n"
    assert p.rate() == 1e6
    p.close()
    assert out.getvalue().count("\n") == 1  # the last count was shown


def test_counts_without_a_total_and_units():
    clock, out = Clock(), io.StringIO()
    p = Progress(unit="frames", stream=out, clock=clock)
    for i in range(1, 31):
        clock.t = i / 30.0
        p.update(i, people=2)
    assert out.getvalue() == ""  # no total, no `every`: a log only gets the end
    p.close()
    assert out.getvalue() == "30 frames people 2 30.0 frames/s\n"


def test_disabled_prints_nothing_but_still_counts():
    tty = Tty()
    p = Progress(3, unit="files", enabled=False, stream=tty)
    for _ in range(3):
        p.advance()
    p.close()
    assert tty.getvalue() == "" and p.done == 3


def test_format_duration():
    assert format_duration(65) == "1:05" and format_duration(3725) == "1:02:05" and format_duration(-3) == "0:00"
