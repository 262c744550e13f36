"""Training under OpenMPI: `mpirun -np 2 ... openpose-plus train --parallel` on loopback,
and `make install-mpi`'s script where it cannot install.

The training runs need OpenMPI and a Horovod built with the MPI controller (`make
install-mpi` gives both); where either is missing they skip and say which. The gloo launch
(`horovodrun --gloo`) is tested with the training suite; these are the MPI twins.
"""
from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
TIMEOUT = 420


def _mpi_skip_reason():
    """Why these tests cannot run here, or None. Cheap on purpose (no TensorFlow import at
    collection): the tests themselves prove that the MPI controller is the one in use."""
    if not shutil.which("mpirun"):
        return "OpenMPI is not installed (no mpirun on PATH): `make install-mpi` installs it"
    spec = importlib.util.find_spec("horovod")
    if spec is None or not spec.submodule_search_locations:
        return "Horovod is not installed in %s: `make setup`, then `make install-mpi`" % BIN.parent
    libs = list(Path(list(spec.submodule_search_locations)[0], "tensorflow").glob("mpi_lib*.so"))
    if not libs:
        return "Horovod here was built without TensorFlow support (no horovod/tensorflow/mpi_lib*.so)"
    # Built with MPI, Horovod's TensorFlow op library links libmpi (gloo-only builds do not).
    if b"libmpi.so" not in libs[0].read_bytes():
        return "Horovod in %s was built without the MPI controller (gloo only): " \
               "`make install-mpi` rebuilds it with MPI and gloo" % BIN.parent
    return None


_reason = _mpi_skip_reason()
needs_mpi = pytest.mark.skipif(_reason is not None, reason=_reason or "")


def mpirun(np_, *command, cwd=None):
    """``mpirun -np N`` on this machine (root allowed, more ranks than cores allowed)."""
    cmd = ["mpirun", "-np", str(np_), "--oversubscribe", "--bind-to", "none"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    # One thread per rank: two ranks on a small CI machine must not fight over cores.
    env = dict(os.environ, OMP_NUM_THREADS="1", TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1",
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    result = subprocess.run(cmd + [str(c) for c in command], capture_output=True, text=True, timeout=TIMEOUT,
                            env=env, cwd=cwd)
    assert result.returncode == 0, "mpirun failed (%d):\n%s\n%s" % (result.returncode, result.stdout[-4000:],
                                                                   result.stderr[-4000:])
    return result


def tiny_config_toml(out: Path, steps: int) -> str:
    from openpose_plus.host_training.config import load_config

    return load_config(None, [
        "DATA.train_data=\"synthetic\"", "DATA.workers=0", "DATA.synthetic_size=8", "DATA.synthetic_people=2",
        "MODEL.name=\"vggtiny\"", "MODEL.input_height=64", "MODEL.input_width=64", "MODEL.stages=2",
        "AUGMENT.steps=[]", "TRAIN.batch_size=2", "TRAIN.learning_rate=1e-3", "TRAIN.weight_decay=0.0",
        "TRAIN.lr_schedule.kind=\"constant\"", "TRAIN.log_every=1", "TRAIN.image_every=1000",
        "TRAIN.checkpoint_every=1000", "TRAIN.steps=%d" % steps, "TRAIN.output_dir=\"%s\"" % out]).to_toml()


@pytest.mark.slow
@pytest.mark.tensorflow
@pytest.mark.toolchain
@needs_mpi
def test_the_readme_launch_line_trains_two_ranks_in_lockstep_under_mpirun(tmp_path):
    """``mpirun -np 2 openpose-plus train --config FILE --parallel``: the CLI as the README
    launches it (its main() with the same arguments, so each rank can also report what it
    trained). Each rank trains on its own shard; with gradients averaged over MPI the weights
    stay identical, and the collective really was MPI with 2 ranks."""
    config = tmp_path / "train.toml"
    config.write_text(tiny_config_toml(tmp_path / "run", steps=3))
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent("""
        import sys
        import numpy as np
        import horovod.tensorflow as hvd
        from openpose_plus.commands import main
        from openpose_plus.host_training import train as train_module

        trained = []
        real_train = train_module.train

        def train_and_keep(*args, **kwargs):  # the real training; its result is kept to report
            trained.append(real_train(*args, **kwargs))
            return trained[-1]

        train_module.train = train_and_keep
        status = main(["train", "--config", sys.argv[1], "--parallel"])
        result = trained[0]
        weights = np.concatenate([np.ravel(v.numpy()) for v in result.model.trainable_variables])
        print("RANK %d SIZE %d MPI %s STEPS %d DIGEST %.9e %.9e" % (
            hvd.rank(), hvd.size(), hvd.mpi_enabled(), result.last_step,
            float(weights.astype(np.float64).sum()), float(np.abs(weights).astype(np.float64).sum())),
            flush=True)
        sys.exit(status)
    """))
    result = mpirun(2, sys.executable, driver, config, cwd=tmp_path)
    # Matched anywhere, not per line: mpirun's output forwarding may join the ranks' lines.
    ranks = sorted(re.findall(r"RANK (\d+) SIZE (\d+) MPI (\w+) STEPS (\d+) DIGEST ([-+.e\d]+) ([-+.e\d]+)",
                              result.stdout))
    assert [r[:4] for r in ranks] == [("0", "2", "True", "3"), ("1", "2", "True", "3")], result.stdout
    assert ranks[0][4:] == ranks[1][4:], "the ranks' weights differ after training: %s" % ranks
    # Only rank 0 reports and writes.
    assert len(re.findall(r"trained steps 0\.\.3", result.stdout)) == 1, result.stdout + result.stderr
    run = tmp_path / "run"
    assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-3.index"]
    assert (run / "config.toml").exists()


# ------------------------------------------------------------------ scripts/install_mpi.sh refusing

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install_mpi.sh"


def run_script_without_mpi(tmp_path, os_release, *args):
    """The script with a PATH that has the few tools it needs but no mpirun/mpicxx/apt-get."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("dirname", "cat", "sed", "grep", "id", "head", "uname"):
        found = shutil.which(tool)
        if found:
            (tools / tool).symlink_to(found)
    release = tmp_path / "os-release"
    release.write_text(os_release)
    venv = tmp_path / "venv" / "bin"  # the script only looks for its python before step 1
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    env = dict(os.environ, PATH=str(tools), OS_RELEASE=str(release), VENV=str(venv.parent))
    return subprocess.run([shutil.which("bash"), str(SCRIPT), *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_install_mpi_says_what_to_do_on_an_unknown_distribution(tmp_path):
    result = run_script_without_mpi(tmp_path, 'ID=fedora\nID_LIKE="rhel centos"\n')
    assert result.returncode == 2, result.stdout + result.stderr
    assert "only on Debian/Ubuntu (found: fedora)" in result.stderr
    assert "dnf install openmpi openmpi-devel" in result.stderr and "--skip-system" in result.stderr


def test_install_mpi_refuses_without_mpi_when_told_to_skip_the_system_step(tmp_path):
    result = run_script_without_mpi(tmp_path, "ID=debian\n", "--skip-system")
    assert result.returncode == 1
    assert "mpirun/mpicxx not found and --skip-system given" in result.stderr


def test_install_mpi_rejects_unknown_arguments_and_needs_a_venv(tmp_path):
    result = run_script_without_mpi(tmp_path, "ID=debian\n", "--frobnicate")
    assert result.returncode == 2 and "unknown argument '--frobnicate'" in result.stderr
    env = dict(os.environ, VENV=str(tmp_path / "no-venv"))
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1 and "no Python at" in result.stderr and "make setup" in result.stderr
