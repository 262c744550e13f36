"""edge/atomic.py: whole files or nothing, the mode the umask says, errors that name the file."""
import os
import stat
import subprocess
import sys

import pytest

from openpose_plus.edge.atomic import write_atomic


def test_whole_file_with_the_umasks_mode(tmp_path):
    code = ("import os, sys\n"
            "os.umask(0o027)\n"
            "from openpose_plus.edge.atomic import write_atomic\n"
            "write_atomic(sys.argv[1], 'x' * 100)\n")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.json")], check=True)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == 0o640  # group-readable, as UMask=0027 says
    assert (tmp_path / "a.json").read_text() == "x" * 100


def test_durable_write_replaces_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "engine.plan"
    write_atomic(target, b"old")
    write_atomic(target, b"new", durable=True)
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["engine.plan"]


def test_an_error_names_the_file_not_the_temporary(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(OSError) as info:
        write_atomic(tmp_path / "file" / "x.json", "{}")  # its folder is a file
    assert str(tmp_path / "file" / "x.json") in str(info.value) and ".partial-" not in str(info.value)


def test_a_full_disk_leaves_the_old_file_and_no_partial(tmp_path):
    # RLIMIT_FSIZE makes writes past 64 bytes fail with EFBIG, as a full disk fails them.
    target = tmp_path / "out.json"
    target.write_text("old")
    code = ("import resource, signal, sys\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))\n"
            "from openpose_plus.edge.atomic import write_atomic\n"
            "try:\n"
            "    write_atomic(sys.argv[1], 'y' * 4096)\n"
            "except OSError as exc:\n"
            "    print(exc)\n"
            "    sys.exit(3)\n")
    proc = subprocess.run([sys.executable, "-c", code, str(target)], capture_output=True, text=True)
    assert proc.returncode == 3, proc.stderr
    assert "cannot write %s" % target in proc.stdout and ".partial-" not in proc.stdout
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["out.json"]
