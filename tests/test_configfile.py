"""The one config reader (edge/configfile.py) both sides use: real files, real parsing,
unknown keys refused by name, --set on train and serve, the tomli fallback."""
import glob
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from typing import Any, Dict, List

import pytest

from openpose_plus.edge import configfile
from openpose_plus.edge.configfile import ConfigError, between, one_of, option, positive, section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EDGE_TOML = os.path.join(ROOT, "systemd", "edge.toml")
DEMO_TOML = os.path.join(ROOT, "models", "demo.toml")


@dataclass
class Http:
    port: int = option(8080, between(0, 65535))
    address: str = "127.0.0.1"


@dataclass
class Server:
    mode: str = option("fast", one_of("fast", "slow"))
    rate: float = option(1.5, positive)
    names: List[str] = option(["a"])
    http: Http = section(Http)


@dataclass
class Settings:
    server: Server = section(Server, "SERVER")
    extra: Dict[str, Any] = section(dict)


def test_a_toml_file_then_overrides(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text("[SERVER]\nmode = 'slow'\nnames = ['x', 'y']\n[SERVER.http]\nport = 81\n[extra]\nanything = 1\n")
    cfg = configfile.load(Settings, path, ["SERVER.http.address=0.0.0.0", "server.rate=3", "extra.more='m'"])
    assert cfg.server.mode == "slow" and cfg.server.names == ["x", "y"]
    assert cfg.server.http.port == 81 and cfg.server.http.address == "0.0.0.0"  # bare text is a string
    assert cfg.server.rate == 3.0 and isinstance(cfg.server.rate, float)
    assert cfg.extra == {"anything": 1, "more": "m"}
    assert configfile.as_document(cfg) == {"SERVER": {"mode": "slow", "rate": 3.0, "names": ["x", "y"],
                                                      "http": {"port": 81, "address": "0.0.0.0"}},
                                           "extra": {"anything": 1, "more": "m"}}
    assert configfile.build(Settings, configfile.as_document(cfg)) == cfg  # what it writes it reads back


def test_a_yaml_file_reads_the_same(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "s.yml"
    path.write_text("SERVER:\n  mode: slow\n  http:\n    port: 82\n")
    cfg = configfile.load(Settings, path)
    assert (cfg.server.mode, cfg.server.http.port) == ("slow", 82)
    path.write_text("SERVER: [unclosed\n")
    with pytest.raises(ConfigError, match="s.yml: not valid YAML"):
        configfile.load(Settings, path)


@pytest.mark.parametrize("text, overrides, message", [
    ("[SERVER]\nmdoe = 'x'\n", [], r"^SERVER.mdoe: unknown key \(known: http, mode, names, rate\) \(in .*s.toml\)$"),
    ("[SERVER.http]\nprot = 1\n", [], r"^SERVER.http.prot: unknown key \(known: address, port\)"),
    ("[CLIENT]\nx = 1\n", [], r"^CLIENT: unknown section \(known: SERVER, extra\)"),
    ("", ["SERVER.http.porr=1"], r"^SERVER.http.porr: unknown key"),
    ("", ["nope.x=1"], r"^nope: unknown section"),
    ("[SERVER]\nmode = 'medium'\n", [], r"^SERVER.mode: must be one of fast \| slow, got 'medium'"),
    ("[SERVER]\nrate = -1\n", [], r"^SERVER.rate: must be a positive number, got -1.0"),
    ("[SERVER]\nrate = true\n", [], r"^SERVER.rate: must be a number, got True"),
    ("[SERVER.http]\nport = 70000\n", [], r"^SERVER.http.port: must be 0..65535, got 70000"),
    ("[SERVER.http]\nport = '80'\n", [], r"^SERVER.http.port: must be an integer, got '80'"),
    ("[SERVER]\nnames = 'a'\n", [], r"^SERVER.names: must be a list"),
    ("[SERVER]\nhttp = 3\n", [], r"^SERVER.http: must be a table of keys, got 3"),
    ("[SERVER]\n[server]\n", [], r"^SERVER: given twice"),
    ("[SERVER]\nmode = 'fast'\n", ["SERVER.mode.sub=1"], r"^SERVER.mode: is not a table"),
    ("", ["SERVER.mode"], r"must look like SECTION.key=value"),
    ("", ["mode=fast"], r"must look like SECTION.key=value"),
    ("[SERVER\n", [], r"s.toml: not valid TOML"),
])
def test_bad_keys_and_values_are_refused_by_name(tmp_path, text, overrides, message):
    path = tmp_path / "s.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        configfile.load(Settings, path, overrides)


def test_unreadable_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="missing.toml: cannot read config file"):
        configfile.load(Settings, tmp_path / "missing.toml")
    (tmp_path / "list.toml").write_text("")
    assert configfile.load(Settings, tmp_path / "list.toml") == Settings()  # empty: every default
    (tmp_path / "bad.toml").write_bytes(b"[SERVER]\nmode = '\xff'\n")
    with pytest.raises(ConfigError, match="bad.toml: not UTF-8"):
        configfile.load(Settings, tmp_path / "bad.toml")


def test_both_sides_read_their_shipped_files_with_the_same_reader():
    from openpose_plus.edge.service.config import load_config as load_edge
    from openpose_plus.host_training.config import ConfigError as HostError, load_config as load_training

    edge = load_edge(EDGE_TOML)
    assert edge.source.uri == "csi://0" and edge.sinks.http.enabled and edge.pipeline.infer_workers == "auto"
    demo = load_training(DEMO_TOML)
    # The seed's names keep working.
    assert (demo.data.train_data, demo.model.name, demo.train.train_mode) == ("synthetic", "mobilenet", "single")
    assert HostError is ConfigError  # one error type: a caller catches either side's the same way


def test_edge_overrides_and_the_bundle_path_they_give(tmp_path):
    from openpose_plus.edge.service.config import load_config

    sub = tmp_path / "etc"
    sub.mkdir()
    (sub / "edge.toml").write_text("[model]\nbundle = 'models/b'\n[source]\nuri = 'synthetic://'\n")
    cfg = load_config(str(sub / "edge.toml"), ["sinks.http.port=9000", "sinks.http.enabled=true",
                                               "pipeline.infer_workers=2"])
    assert (cfg.sinks.http.port, cfg.sinks.http.enabled, cfg.pipeline.infer_workers) == (9000, True, 2)
    assert cfg.model.bundle == str(sub / "models" / "b")  # from the file: relative to the file
    here = load_config(str(sub / "edge.toml"), ["model.bundle=other"])
    assert here.model.bundle == os.path.join(os.getcwd(), "other")  # from the command line: to the cwd
    with pytest.raises(ConfigError, match=r"^sinks.http.prot: unknown key .*\(in .*edge.toml\)$"):
        load_config(str(sub / "edge.toml"), ["sinks.http.prot=1"])
    with pytest.raises(ConfigError, match="daemon.log_level: must be one of debug"):
        load_config(str(sub / "edge.toml"), ["daemon.log_level=loud"])


def _serve(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "openpose_plus.commands", "serve"] + list(args),
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def test_serve_takes_set_overrides(tmp_path):
    pytest.importorskip("onnxruntime")
    from edge_fixtures import make_bundle

    bundle = make_bundle(tmp_path, width=96, height=64)
    cfg = tmp_path / "edge.toml"
    cfg.write_text("[model]\nbundle = %s\nbackend = 'onnxruntime'\nthreads = 1\n[source]\nuri = 'synthetic://'\n"
                   % json.dumps(str(tmp_path / "missing")))
    bad = _serve("--check", "--config", str(cfg))
    assert bad.returncode == 2 and "does not exist" in bad.stderr
    good = _serve("--check", "--config", str(cfg), "--set", "model.bundle=%s" % json.dumps(bundle))
    assert good.returncode == 0 and "ok" in good.stdout, good.stderr
    typo = _serve("--check", "--config", str(cfg), "--set", "sinks.http.prot=80")
    assert typo.returncode == 2 and "sinks.http.prot: unknown key" in typo.stderr
    # The daemon itself runs with the overrides: a source that ends, poses into a file.
    out = tmp_path / "poses.jsonl"
    run = _serve("--config", str(cfg), "--set", "model.bundle=%s" % json.dumps(bundle),
                 "--set", "source.uri='synthetic://96x64?people=1&frames=4'", "--set", "source.reopen_on_end=false",
                 "--set", "sinks.jsonl.target=%s" % json.dumps(str(out)), "--set", "sinks.http.enabled=false")
    assert run.returncode == 0, run.stderr[-2000:]
    lines = out.read_text().splitlines()
    assert 1 <= len(lines) <= 4 and all("people" in json.loads(line) for line in lines)  # the daemon may drop when busy


HIDE_TOMLLIB = textwrap.dedent("""
    import sys
    sys.modules["tomllib"] = None  # as on Python 3.8-3.10: `import tomllib` fails
    %s
    from openpose_plus.edge import configfile
    from openpose_plus.edge.service.config import load_config as load_edge
    from openpose_plus.host_training.config import load_config as load_training
    print(configfile.toml_module().__name__)
    print(load_edge(sys.argv[1]).source.uri)
    print(load_training(sys.argv[2], ["TRAIN.batch_size=3"]).train.batch_size)
""")


def test_without_tomllib_the_reader_falls_back_to_tomli():
    pytest.importorskip("tomli")
    proc = subprocess.run([sys.executable, "-c", HIDE_TOMLLIB % "", EDGE_TOML, DEMO_TOML],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["tomli", "csi://0", "3"]


def test_without_either_parser_the_error_says_what_to_install():
    proc = subprocess.run([sys.executable, "-c", HIDE_TOMLLIB % 'sys.modules["tomli"] = None', EDGE_TOML, DEMO_TOML],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "reading TOML needs tomli on Python < 3.11 (pip install tomli)" in proc.stderr


OLD_PYTHON = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.8*/bin/python3.8")))


@pytest.mark.skipif(not OLD_PYTHON, reason="no Python 3.8 interpreter (pyenv) on this machine")
def test_the_reader_runs_on_python_3_8(tmp_path):
    # The reader alone (stdlib only) under the Jetson's Python: its typing and its fallback.
    (tmp_path / "c.toml").write_text("[SERVER]\nmode = 'slow'\n")
    code = textwrap.dedent("""
        import importlib.util, sys
        from dataclasses import dataclass
        from typing import List
        spec = importlib.util.spec_from_file_location("configfile", sys.argv[1])
        c = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(c)

        @dataclass
        class Server:
            mode: str = c.option("fast", c.one_of("fast", "slow"))
            names: List[str] = c.option(["a"])

        @dataclass
        class Settings:
            server: Server = c.section(Server, "SERVER")

        print(c.build(Settings, {"SERVER": {"mode": "slow", "names": ["b"]}}))
        try:
            print(c.load(Settings, sys.argv[2], ["SERVER.names=['x']"]))
        except c.ConfigError as exc:  # no tomli installed for this interpreter
            print(exc)
    """)
    proc = subprocess.run([OLD_PYTHON[-1], "-c", code, os.path.join(ROOT, "edge", "configfile.py"),
                           str(tmp_path / "c.toml")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    assert first == "Settings(server=Server(mode='slow', names=['b']))"
    assert second in ("Settings(server=Server(mode='slow', names=['x']))",
                      "reading TOML needs tomli on Python < 3.11 (pip install tomli)")
