"""The training loop: one process, or one per GPU with Horovod (TRAIN.train_mode).

Each step: a batch of this rank's shard, the network's per-stage maps, the masked L2
loss over every stage plus weight decay, gradients averaged across ranks, one optimiser
update. Rank 0 alone writes the resolved config, checkpoints (model, optimiser, step) and
TensorBoard logs, and prints progress. A custom tf.GradientTape loop rather than
``model.fit``, because Horovod's Keras wrappers fail with Keras 3 (see distribute.py).

Learning rate: TRAIN.learning_rate, times the number of ranks when TRAIN.scale_lr (the
linear scaling rule), reached by a linear warm-up over TRAIN.lr_schedule.warmup_steps,
then decayed (step / cosine / constant). Resume (TRAIN.resume) continues from the last
checkpoint's step with its optimiser state; the data order restarts from the seed.
"""
from __future__ import annotations

import logging
import math
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, TextIO

import numpy as np
import tensorflow as tf
import keras

from openpose_plus.edge.progress import Progress

from .checkpoints import CHECKPOINT_DIR, LOG_DIR, build_network, write_run_files
from .config import Config, TrainConfig
from .distribute import Distribution, make_distribution
from .loss import pose_loss, weight_decay_loss
from .data.pipeline import build_dataset, dataset_skeleton
from .summaries import RunLog

__all__ = ["TrainingError", "TrainResult", "learning_rate_at", "make_optimizer", "load_pretrained", "train"]

log = logging.getLogger("openpose_plus.train")

WEIGHT_SUFFIXES = (".caffemodel", ".npz", ".pth", ".pt")


class TrainingError(RuntimeError):
    """Training cannot go on; the message says why (bad sample, NaN loss, shape mismatch...)."""


@dataclass
class TrainResult:
    output_dir: str
    first_step: int                     # the step this run started from (0, or a resumed one)
    last_step: int
    losses: List[float] = field(default_factory=list)   # total loss per step run here (rank average)
    samples_per_second: float = 0.0     # all ranks together
    checkpoint: Optional[str] = None    # the last one written (rank 0)
    model: Any = field(default=None, repr=False)  # the trained Keras network


def learning_rate_at(t: TrainConfig, step: int, ranks: int = 1) -> float:
    """The rate for optimiser step ``step`` (0-based) with ``ranks`` processes."""
    s = t.lr_schedule
    target = t.learning_rate * (ranks if t.scale_lr else 1)
    if step < s.warmup_steps:
        return target * (step + 1) / s.warmup_steps
    after = step - s.warmup_steps
    if s.kind == "constant":
        return target
    if s.kind == "step":
        return target * s.decay_rate ** (after // s.decay_steps)
    frac = min(1.0, after / s.decay_steps)  # cosine
    return s.min_lr + (target - s.min_lr) * 0.5 * (1.0 + math.cos(math.pi * frac))


def make_optimizer(t: TrainConfig, mixed_precision: bool = False):
    lr = t.learning_rate
    if t.optimizer == "adam":
        opt = keras.optimizers.Adam(lr)
    elif t.optimizer == "sgd":
        opt = keras.optimizers.SGD(lr)
    elif t.optimizer == "momentum":
        opt = keras.optimizers.SGD(lr, momentum=t.momentum, nesterov=True)
    elif t.optimizer == "rmsprop":
        opt = keras.optimizers.RMSprop(lr, momentum=t.momentum)
    else:
        raise ValueError("TRAIN.optimizer: unknown %r" % t.optimizer)
    return keras.optimizers.LossScaleOptimizer(opt) if mixed_precision else opt


def load_pretrained(model, path: str) -> str:
    """MODEL.pretrained: CMU OpenPose weights by suffix, else a run directory or checkpoint prefix."""
    p = Path(path)
    if p.suffix in WEIGHT_SUFFIXES:
        from .weights import load_openpose_weights
        report = load_openpose_weights(model, p, skip_mismatched=True, allow_missing=True)
        return "%s: %s" % (p, report)
    ckpt = tf.train.latest_checkpoint(str(p / CHECKPOINT_DIR)) if p.is_dir() else str(p)
    if not ckpt:
        raise TrainingError("MODEL.pretrained: %s holds no checkpoint" % p)
    try:
        tf.train.Checkpoint(model=model).read(ckpt).expect_partial()
    except (tf.errors.OpError, ValueError) as exc:
        raise TrainingError("MODEL.pretrained: cannot read %s: %s" % (ckpt, str(exc).splitlines()[0])) from None
    return ckpt


def _mixed_policy() -> str:
    # float16 is fast on GPUs; on a CPU bfloat16 is the half type its kernels support.
    return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"


def _check_batch(batch: Dict[str, tf.Tensor], model) -> None:
    """The data and the network must agree before the first step, with a message saying how not."""
    heat, paf = model.outputs[-2], model.outputs[-1]
    for key, out in (("heatmaps", heat), ("pafs", paf)):
        got, want = tuple(batch[key].shape[1:]), tuple(out.shape[1:])
        if got != want:
            raise TrainingError("the data's %s are %s per sample but network %r makes %s: are MODEL "
                                "sizes and the skeleton the ones the data was made for?"
                                % (key, got, model.name, want))
    if tuple(batch["image"].shape[1:]) != tuple(model.inputs[0].shape[1:]):
        raise TrainingError("the data's images are %s but the network takes %s"
                            % (tuple(batch["image"].shape[1:]), tuple(model.inputs[0].shape[1:])))


def _data_error(message: str) -> str:
    """The Python error inside a tf.data failure, without TensorFlow's node and iterator names."""
    m = re.search(r"\b\w+(?:Error|Exception|Sample): .*", message, re.S)
    return (m.group(0) if m else message).strip().splitlines()[0]


def _next_batch(it, step: int):
    try:
        return next(it)
    except StopIteration:
        raise TrainingError("the training data ran out at step %d" % step) from None
    except tf.errors.OpError as exc:
        # A failure inside the pipeline's numpy code arrives as an OpError; its message
        # carries the original error, which names the file.
        raise TrainingError("reading training data failed at step %d: %s" % (step, _data_error(exc.message))) from None


def _build_model(cfg: Config, skeleton, chief: bool):
    """The network (its layers in the mixed policy when asked), started from MODEL.pretrained."""
    previous_policy = keras.mixed_precision.global_policy()
    if cfg.train.mixed_precision:
        keras.mixed_precision.set_global_policy(_mixed_policy())
    try:
        model = build_network(cfg, skeleton)
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    if cfg.model.pretrained:
        note = load_pretrained(model, cfg.model.pretrained)
        if chief:
            log.info("started from %s", note)
    return model


def _resume(checkpoint, manager, step_var, chief: bool) -> None:
    """TRAIN.resume: model, optimiser and step from the last checkpoint, if there is one."""
    if not manager.latest_checkpoint:
        return
    try:
        checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as exc:
        raise TrainingError("TRAIN.resume: %s does not fit this network and optimiser: %s"
                            % (manager.latest_checkpoint, str(exc).splitlines()[0])) from None
    if chief:
        log.info("resumed from %s at step %d", manager.latest_checkpoint, int(step_var.numpy()))


def _make_train_step(model, optimizer, dist: Distribution, t: TrainConfig):
    """One optimiser update as a tf.function: the loss over every stage plus weight decay,
    gradients averaged across ranks; returns the rank-averaged total and the loss parts."""
    variables = model.trainable_variables
    wd = float(t.weight_decay)

    @tf.function(reduce_retracing=True)
    def train_step(image, heatmaps, pafs, mask):
        with tf.GradientTape() as tape:
            outputs = model(image, training=True)
            loss, parts = pose_loss(outputs, heatmaps, pafs, mask)
            total = loss + weight_decay_loss(variables, wd)
            scaled = optimizer.scale_loss(total) if t.mixed_precision else total
        grads = tape.gradient(scaled, variables)
        grads = dist.average_gradients(grads)
        optimizer.apply_gradients(zip(grads, variables))
        return dist.average(total), parts
    return train_step


class _ChiefReport:
    """Rank 0's part of each step: the progress line, TensorBoard scalars and pictures, checkpoints."""

    def __init__(self, cfg: Config, out: Path, skeleton, manager, ranks: int, start: int,
                 stream: Optional[TextIO]) -> None:
        self.t, self.manager, self.ranks = cfg.train, manager, ranks
        write_run_files(out, cfg, skeleton)
        self.runlog = RunLog(out / LOG_DIR, skeleton, cfg.model.stride)
        self.progress = Progress(self.t.steps, start=start, label="step", every=self.t.log_every,
                                 stream=stream or sys.stderr)
        self.batch_total = self.t.batch_size * ranks
        self.begin()

    def begin(self) -> None:
        """Start timing the samples/s window (right before the first step)."""
        self.window_t, self.window_steps = time.monotonic(), 0

    def after_step(self, step: int, batch, loss: float, parts, model) -> Optional[str]:
        """Report step ``step`` (0-based); the path of the checkpoint written, if one was."""
        t = self.t
        now = time.monotonic()
        self.window_steps += 1
        rate = self.batch_total * self.window_steps / max(now - self.window_t, 1e-9)
        self.progress.update(step + 1, loss=loss, samples_s=rate)
        done = step + 1 == t.steps
        if (step + 1) % t.log_every == 0 or done:
            scalars = {"loss/total": loss, "lr": learning_rate_at(t, step, self.ranks), "samples_per_s": rate}
            scalars.update({"loss/" + k: float(v) for k, v in parts.items()})
            self.runlog.scalars(step + 1, scalars)
            self.window_t, self.window_steps = now, 0
        if (step + 1) % t.image_every == 0 or done:
            preds = model(batch["image"][:1], training=False)
            self.runlog.pictures(step + 1, batch["image"][0].numpy(), batch["heatmaps"][0].numpy(),
                                 preds[-2][0].numpy(), preds[-1][0].numpy(), batch["pafs"][0].numpy())
        if (step + 1) % t.checkpoint_every == 0 or done:
            return self.manager.save(checkpoint_number=step + 1)
        return None

    def close(self) -> None:
        self.runlog.flush()
        self.runlog.close()


def train(cfg: Config, on_step: Optional[Callable[[int, Dict[str, np.ndarray], float], None]] = None,
          stream: Optional[TextIO] = None, dist: Optional[Distribution] = None) -> TrainResult:
    """Train as ``cfg`` says; ``on_step(step, batch, loss)`` is called on every rank after each step."""
    t = cfg.train
    dist = dist or make_distribution(t.train_mode)
    out = Path(t.output_dir)
    keras.utils.set_random_seed(t.seed)  # same initial weights everywhere; rank 0's win anyway
    skeleton = dataset_skeleton(cfg)
    model = _build_model(cfg, skeleton, dist.is_chief)
    optimizer = make_optimizer(t, t.mixed_precision)
    optimizer.build(model.trainable_variables)
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var)
    manager = tf.train.CheckpointManager(checkpoint, str(out / CHECKPOINT_DIR), max_to_keep=t.keep_checkpoints)
    if t.resume:
        _resume(checkpoint, manager, step_var, dist.is_chief)
    # Rank 0's weights, optimiser slots and step are everyone's starting point.
    dist.broadcast_variables(list(model.variables) + list(optimizer.variables) + [step_var])
    start = int(step_var.numpy())
    report = _ChiefReport(cfg, out, skeleton, manager, dist.size, start, stream) if dist.is_chief else None
    dataset = build_dataset(cfg, "train", rank=dist.rank, num_ranks=dist.size, repeat=True)
    train_step = _make_train_step(model, optimizer, dist, t)

    result = TrainResult(str(out), start, start, model=model)
    it = iter(dataset)
    if report is not None:
        report.begin()
    warm_t = None  # time after the first step (which also traces the graph)
    for step in range(start, t.steps):
        batch = _next_batch(it, step)
        if step == start:
            _check_batch(batch, model)
        optimizer.learning_rate.assign(learning_rate_at(t, step, dist.size))
        total, parts = train_step(batch["image"], batch["heatmaps"], batch["pafs"], batch["mask"])
        loss = float(total)
        if not math.isfinite(loss):
            raise TrainingError("the loss is %s at step %d (learning rate %.3g); the last good checkpoint "
                                "is %s" % (loss, step, learning_rate_at(t, step, dist.size), manager.latest_checkpoint))
        step_var.assign(step + 1)
        if warm_t is None:
            warm_t = time.monotonic()
        result.losses.append(loss)
        result.last_step = step + 1
        if on_step is not None:
            on_step(step, {k: v.numpy() for k, v in batch.items()}, loss)
        if report is not None:
            result.checkpoint = report.after_step(step, batch, loss, parts, model) or result.checkpoint
    if warm_t is not None and result.last_step - start > 1:
        result.samples_per_second = t.batch_size * dist.size * (result.last_step - start - 1) / (time.monotonic() - warm_t)
    if report is not None:
        report.close()
    dist.barrier()  # no rank leaves (and tears Horovod down) while rank 0 still writes
    return result
