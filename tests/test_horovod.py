"""Real Horovod: two processes on loopback (gloo) train a few steps of a tiny network.

Both ranks must end with identical weights (gradients averaged, initial state broadcast:
each rank starts from its own seed, so without the broadcast they would differ),
they must have seen disjoint samples (each its own shard), and only rank 0 writes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.tensorflow
pytest.importorskip("tensorflow")
pytest.importorskip("horovod.tensorflow")

from openpose_plus.host_training.config import load_config  # noqa: E402

WORKER = textwrap.dedent('''
    import hashlib, json, sys
    import numpy as np

    def main():
        from openpose_plus.host_training.config import load_config
        from openpose_plus.host_training.train import train
        import horovod.tensorflow as hvd

        hvd.init()
        # A different seed per rank: different initial weights unless rank 0's are broadcast.
        cfg = load_config(sys.argv[1], ["TRAIN.seed=%d" % (11 + hvd.rank())])
        seen = []
        result = train(cfg, on_step=lambda step, batch, loss: seen.extend(int(i) for i in batch["sample_id"]))
        weights = [v.numpy() for v in result.model.weights]
        digest = hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights)).hexdigest()
        with open("%s/rank%d.json" % (sys.argv[2], hvd.rank()), "w") as f:
            json.dump({"rank": hvd.rank(), "size": hvd.size(), "seen": seen, "digest": digest,
                       "losses": result.losses, "checkpoint": result.checkpoint}, f)
        np.savez("%s/rank%d.npz" % (sys.argv[2], hvd.rank()), *weights)

    if __name__ == "__main__":
        main()
''')


def horovodrun():
    exe = Path(sys.executable).with_name("horovodrun")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "horovod.runner.launch"]


@pytest.mark.slow
def test_two_ranks_average_gradients_and_read_disjoint_shards(tmp_path):
    run = tmp_path / "run"
    cfg = load_config(None, [
        "DATA.train_data=\"synthetic\"", "DATA.workers=0", "DATA.synthetic_size=8", "DATA.synthetic_people=2",
        "MODEL.name=\"vggtiny\"", "MODEL.input_height=64", "MODEL.input_width=64", "MODEL.stages=1",
        "AUGMENT.steps=[]", "TRAIN.train_mode=\"parallel\"", "TRAIN.batch_size=2", "TRAIN.steps=3",
        "TRAIN.learning_rate=1e-3", "TRAIN.lr_schedule.kind=\"constant\"", "TRAIN.lr_schedule.warmup_steps=1",
        "TRAIN.log_every=1", "TRAIN.checkpoint_every=3", "TRAIN.image_every=100",
        "TRAIN.output_dir=\"%s\"" % run])
    (tmp_path / "train.toml").write_text(cfg.to_toml())
    (tmp_path / "worker.py").write_text(WORKER)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    cmd = horovodrun() + ["-np", "2", "-H", "localhost:2", "--gloo", sys.executable, str(tmp_path / "worker.py"),
                          str(tmp_path / "train.toml"), str(out)]
    proc = subprocess.run(cmd, cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=420)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    ranks = [json.loads((out / ("rank%d.json" % r)).read_text()) for r in (0, 1)]
    assert [r["size"] for r in ranks] == [2, 2]
    # Identical weights on both ranks, bit for bit.
    assert ranks[0]["digest"] == ranks[1]["digest"]
    w0, w1 = np.load(out / "rank0.npz"), np.load(out / "rank1.npz")
    assert len(w0.files) == len(w1.files) > 10
    for k in w0.files:
        np.testing.assert_array_equal(w0[k], w1[k])
    # Each rank read its own shard: 3 steps x 2 samples, and no sample on both ranks.
    seen0, seen1 = set(ranks[0]["seen"]), set(ranks[1]["seen"])
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 6
    assert seen0 and seen1 and not (seen0 & seen1)
    assert seen0 | seen1 <= set(range(8))
    # The logged loss is the average over ranks, so both report the same numbers.
    np.testing.assert_allclose(ranks[0]["losses"], ranks[1]["losses"], rtol=1e-6)
    # Rank 0 alone writes the checkpoint, the resolved config and the logs.
    assert ranks[0]["checkpoint"] and ranks[1]["checkpoint"] is None
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "config.toml", "logs", "skeleton.json"]
    assert len(list((run / "logs").iterdir())) == 1
    # The learning rate is scaled by the number of ranks once warm.
    import tensorflow as tf
    lrs = {}
    for path in (run / "logs").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for v in event.summary.value:
                if v.tag == "lr":
                    lrs[event.step] = float(tf.make_ndarray(v.tensor))
    assert lrs[3] == pytest.approx(2e-3)
    # The weights in the checkpoint are the ones both ranks hold.
    from openpose_plus.host_training.checkpoints import load_trained_model
    model, _, _ = load_trained_model(run)
    for k, w in zip(w0.files, model.weights):
        np.testing.assert_array_equal(w0[k], w.numpy())
