"""The soak bench, short: the daemon under HTTP clients, watched from outside (benches/soak.py)."""
import pathlib

import pytest

from openpose_plus.benches.soak import format_table, soak

BUNDLE = pathlib.Path(__file__).resolve().parent.parent / "models" / "demo"


@pytest.mark.slow
def test_short_soak_loses_nothing_and_stays_flat():
    v = soak(str(BUNDLE), "synthetic://320x240?people=2", minutes=0.4, clients=3, sample=2.0, watchdog=4.0)
    table = format_table(v)
    assert v["exit_code"] == 0, table
    assert v["frames_in"] > 50 and v["records_out"] == v["frames_in"], table
    assert v["http_ok"] > 20 and v["http_failed"] == 0 and v["mjpeg_mb"] > 0, table
    # the watchdog is fed every half WatchdogSec (2 s); a gap over the whole timeout would be a restart
    assert v["watchdog_pings"] >= 5 and v["watchdog_max_gap_s"] < 4.0, table
    assert v["fds"]["max"] - v["fds"]["first"] <= 8 and v["threads"]["max"] - v["threads"]["first"] <= 8, table
    assert v["rss_mb"]["second_half_growth"] < 20, table
