"""One sink factory for `openpose-plus run` (flags) and the daemon (its [sinks.*] tables)."""
import os

import pytest

from openpose_plus.edge.service.config import parse_config
from openpose_plus.edge.sinks import HttpSink, JsonLinesSink, OpenPoseJsonSink, VideoSink
from openpose_plus.edge.sinks.factory import build_sinks, parse_address, sinks_config


def kinds(sinks):
    return [type(s) for s in sinks]


def test_run_flags_and_daemon_tables_build_the_same_sinks(tmp_path):
    json_dir, jsonl, video = str(tmp_path / "json"), str(tmp_path / "p.jsonl"), str(tmp_path / "v.mp4")
    from_flags = build_sinks(sinks_config(write_json=json_dir, jsonl=jsonl, video=video, fps=12.0, http="127.0.0.1:0"))
    daemon = parse_config({"model": {"bundle": "b"}, "source": {"uri": "synthetic://"},
                           "sinks": {"openpose_json": {"directory": json_dir}, "jsonl": {"target": jsonl},
                                     "video": {"path": video, "fps": 12.0},
                                     "http": {"enabled": True, "address": "127.0.0.1", "port": 0}}})
    from_tables = build_sinks(daemon.sinks)
    assert kinds(from_flags) == kinds(from_tables) == [OpenPoseJsonSink, JsonLinesSink, VideoSink, HttpSink]
    for a, b in zip(from_flags, from_tables):
        assert {k: v for k, v in vars(a).items() if isinstance(v, (str, int, float))} == \
               {k: v for k, v in vars(b).items() if isinstance(v, (str, int, float))}
    for s in from_flags + from_tables:
        s.close()


def test_nothing_asked_nothing_built():
    assert build_sinks(sinks_config()) == []
    assert build_sinks(parse_config({"model": {"bundle": "b"}, "source": {"uri": "x"}}).sinks) == []


def test_http_address_is_checked():
    assert parse_address("0.0.0.0:8080") == ("0.0.0.0", 8080)
    assert parse_address(":9000") == ("127.0.0.1", 9000)
    for bad in ("8080", "host:", "host:http", "host:70000"):
        with pytest.raises(ValueError, match="ADDR:PORT"):
            parse_address(bad)


def test_run_refuses_a_bad_http_flag(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    from edge_fixtures import make_bundle

    from openpose_plus.commands import main

    bundle = make_bundle(tmp_path, width=96, height=64)
    assert main(["run", "synthetic://96x64?frames=2", "--bundle", bundle, "--http", "nowhere", "--quiet"]) == 2
    assert "ADDR:PORT, got 'nowhere'" in capsys.readouterr().err
    out = tmp_path / "json"
    assert main(["run", "synthetic://96x64?frames=2", "--bundle", bundle, "--write-json", str(out), "--quiet"]) == 0
    assert len(os.listdir(out)) == 2
