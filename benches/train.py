"""``openpose-plus bench train``: what each network costs here, to train and to run.

For each network: parameters, inference ms per image (last stage only, batch 1, as
export and evaluation run it) and training samples/s (forward + masked L2 over all
stages + backward + Adam, on fixed random batches so the input pipeline is not timed;
``bench data`` times that). The first call of each is a warm-up and not counted.
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, List

import numpy as np

from openpose_plus.commands._options import at_least, size_type

__all__ = ["add_arguments", "run", "measure"]


HELP = "networks: inference ms/image and training samples/s"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default="vgg,vggtiny,mobilenet", help="comma-separated MODEL.name values")
    parser.add_argument("--size", type=size_type(multiple=8, example="368x368"), default=(368, 368), help="input WxH (default 368x368)")
    parser.add_argument("--batch-size", type=at_least(1), default=4, help="training batch (default 4)")
    parser.add_argument("--steps", type=at_least(1), default=5, help="timed training steps (default 5)")
    parser.add_argument("--runs", type=at_least(1), default=10, help="timed inference runs (default 10)")
    parser.add_argument("--stages", type=at_least(0), default=0, help="stages per network (default: each one's own)")


def measure(name: str, width: int, height: int, batch: int, steps: int, runs: int,
            stages: int = 0) -> Dict[str, float]:
    import keras
    import tensorflow as tf

    from openpose_plus.edge.skeleton import COCO18

    from openpose_plus.host_training.loss import pose_loss
    from openpose_plus.host_training.models import build_model, inference_model

    model = build_model(name, COCO18, height, width, stages=stages or None)
    rng = np.random.default_rng(0)
    h, w = height // 8, width // 8
    images = tf.constant(rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8))
    heat = tf.constant(rng.random((batch, h, w, COCO18.num_heatmaps), dtype=np.float32))
    paf = tf.constant(rng.uniform(-1, 1, (batch, h, w, COCO18.num_pafs)).astype(np.float32))
    mask = tf.ones((batch, h, w, 1), tf.float32)
    opt = keras.optimizers.Adam(1e-5)
    opt.build(model.trainable_variables)  # slots made outside the graph: tracing is 4x faster

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss, _ = pose_loss(model(images, training=True), heat, paf, mask)
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    infer = inference_model(model, nchw=True)
    one = images[:1]
    predict = tf.function(lambda x: infer(x, training=False))
    predict(one)
    t = time.perf_counter()
    for _ in range(runs):
        [o.numpy() for o in predict(one)]
    infer_ms = (time.perf_counter() - t) / runs * 1000
    step().numpy()
    t = time.perf_counter()
    for _ in range(steps):
        step().numpy()
    train_rate = batch * steps / (time.perf_counter() - t)
    return {"params_m": model.count_params() / 1e6, "infer_ms": infer_ms, "train_samples_s": train_rate}


def run(args: argparse.Namespace) -> int:
    names: List[str] = [n.strip() for n in args.models.split(",") if n.strip()]
    from openpose_plus.host_training.models import MODELS

    unknown = [n for n in names if n not in MODELS]
    if unknown:
        print("bench train: unknown network(s) %s; known: %s" % (", ".join(unknown), ", ".join(sorted(MODELS))))
        return 2
    w, h = args.size
    print("input %dx%d, training batch %d" % (w, h, args.batch_size))
    print("%-10s %9s %14s %16s" % ("network", "params M", "infer ms/img", "train samples/s"))
    for name in names:
        r = measure(name, w, h, args.batch_size, args.steps, args.runs, args.stages)
        print("%-10s %9.2f %14.1f %16.2f" % (name, r["params_m"], r["infer_ms"], r["train_samples_s"]), flush=True)
    return 0
