"""The systemd unit and its installer, checked by systemd's own verifier."""
import configparser
import os
import pathlib
import re
import shutil
import subprocess
import sys

import pytest

SYSTEMD = pathlib.Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD / "openpose-plus.service"
VERIFY = shutil.which("systemd-analyze")


def _executable():
    entry = pathlib.Path(sys.executable).parent / "openpose-plus"
    return str(entry if entry.exists() else pathlib.Path(sys.executable).resolve())


def _install(root, *extra):
    return subprocess.run(["sh", str(SYSTEMD / "install.sh"), "--root", str(root), "--no-user", *extra],
                          capture_output=True, text=True, timeout=60)


def _service(path):
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str
    parser.read(path)
    return parser


def test_unit_has_what_the_daemon_needs():
    unit = _service(UNIT)
    s = unit["Service"]
    assert s["Type"] == "notify" and s["Restart"] == "on-failure"
    assert int(s["WatchdogSec"]) > 0 and s["ExecReload"].endswith("-HUP $MAINPID")
    assert "serve --config /etc/openpose-plus/edge.toml" in s["ExecStart"]
    assert s["User"] == "openpose-plus" and "video" in s["SupplementaryGroups"].split()
    for key in ("ConfigurationDirectory", "CacheDirectory", "StateDirectory"):
        assert s[key] == "openpose-plus"
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert s[key] == "yes"
    assert s["ProtectSystem"] == "strict"
    # cameras and GPU nodes stay reachable: nothing that makes a device allow-list
    # (ProtectClock= implies DeviceAllow=char-rtc, see systemd.exec(5))
    for key in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"):
        assert key not in s, key
    assert unit["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.toolchain
@pytest.mark.skipif(VERIFY is None, reason="systemd-analyze is missing (apt-get install -y systemd)")
def test_installed_unit_passes_systemd_analyze_verify(tmp_path):
    proc = _install(tmp_path, "--bin", _executable())
    assert proc.returncode == 0, proc.stderr
    unit = tmp_path / "etc/systemd/system/openpose-plus.service"
    assert _service(unit)["Service"]["ExecStart"].startswith(_executable() + " serve --config")
    check = subprocess.run([VERIFY, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    # no warnings either (unknown keys or bad values are only warnings to systemd)
    assert "openpose-plus.service" not in check.stderr, check.stderr


@pytest.mark.toolchain
@pytest.mark.skipif(VERIFY is None, reason="systemd-analyze is missing (apt-get install -y systemd)")
def test_verify_catches_a_broken_unit(tmp_path):
    broken = tmp_path / "openpose-plus.service"
    text = UNIT.read_text().replace("/usr/local/bin/openpose-plus", _executable())
    broken.write_text(text.replace("Type=notify", "Type=notifyy"))
    check = subprocess.run([VERIFY, "verify", str(broken)], capture_output=True, text=True, timeout=60)
    assert "service type" in check.stderr and "notifyy" in check.stderr  # the check above would fail


def test_installer_keeps_an_existing_config_and_checks_its_binary(tmp_path):
    conf = tmp_path / "etc/openpose-plus/edge.toml"
    conf.parent.mkdir(parents=True)
    conf.write_text("# mine\n")
    proc = _install(tmp_path, "--bin", _executable())
    assert proc.returncode == 0 and "keeping the existing" in proc.stdout
    assert conf.read_text() == "# mine\n"
    fresh = tmp_path / "fresh"
    assert _install(fresh, "--bin", _executable()).returncode == 0
    assert (fresh / "etc/openpose-plus/edge.toml").read_text() == (SYSTEMD / "edge.toml").read_text()
    bad = _install(tmp_path / "x", "--bin", "/nonexistent/openpose-plus")
    assert bad.returncode == 1 and "not executable" in bad.stderr
    assert _install(tmp_path / "y", "--bin", "relative/path").returncode == 2
    assert os.access(SYSTEMD / "install.sh", os.X_OK)


@pytest.mark.skipif(VERIFY is None, reason="systemd-analyze is missing (apt-get install -y systemd)")
def test_unit_exposure_is_at_most_2(tmp_path):
    proc = _install(tmp_path, "--bin", _executable())
    assert proc.returncode == 0, proc.stderr
    unit = tmp_path / "etc/systemd/system/openpose-plus.service"
    out = subprocess.run([VERIFY, "security", "--offline=yes", str(unit)], capture_output=True, text=True,
                         timeout=60, cwd=tmp_path)
    score = float(re.search(r"Overall exposure level for \S+: ([\d.]+)", out.stdout).group(1))
    assert score <= 2.0, out.stdout[-3000:]
    assert (tmp_path / "usr/local/share/doc/openpose-plus/README.md").is_file()  # Documentation=


def _syscall_set(name, seen=None):
    """The system calls a systemd syscall group allows, nested groups expanded."""
    seen = set() if seen is None else seen
    out = subprocess.run([VERIFY, "syscall-filter", name], capture_output=True, text=True, timeout=60).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if not item or item.startswith("#"):
            continue
        if item.startswith("@"):
            if item not in seen:
                seen.add(item)
                calls |= _syscall_set(item, seen)
        else:
            calls.add(item)
    return calls


@pytest.mark.slow
@pytest.mark.skipif(VERIFY is None or shutil.which("strace") is None,
                    reason="needs systemd-analyze and strace (apt-get install -y systemd strace)")
def test_the_daemon_makes_only_system_calls_the_unit_allows(tmp_path):
    # Where systemd does not run as PID 1 (containers, CI) the unit cannot be started for
    # real; tracing the service's own work (model, grouping, JSON and HTTP sinks) and holding
    # every call against the unit's filter is the check that still runs.
    unit = _service(UNIT)["Service"]
    allowed = _syscall_set("@system-service") - _syscall_set("@privileged")
    assert "SystemCallFilter" in unit
    trace = tmp_path / "trace"
    bundle = SYSTEMD.parent / "models" / "demo"
    cmd = ["strace", "-f", "-qq", "-o", str(trace), "-e", "trace=all", _executable(), "run",
           "synthetic://320x240?people=2", "--bundle", str(bundle), "--frames", "20",
           "--write-json", str(tmp_path / "json"), "--http", "127.0.0.1:0"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    used = set()
    for line in trace.read_text().splitlines():
        m = re.match(r"\d+\s+(\w+)\(", line)
        if m:
            used.add(m.group(1))
    assert {"openat", "write"} <= used  # the trace saw the work
    # execve runs before systemd applies the filter to the service itself. SQLite (onnxruntime
    # keeps a usage database in ~/.cache) fchowns its journal files only when running as root,
    # which the service never is (User=openpose-plus).
    expected = {"execve"} | ({"fchown"} if os.geteuid() == 0 else set())
    assert used - allowed - expected == set(), sorted(used - allowed)
