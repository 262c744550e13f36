"""One process or many: the few collective operations training needs, behind one object.

``single``: rank 0 of 1, every operation is the identity. ``parallel``: Horovod. With
Keras 3, Horovod's DistributedGradientTape / DistributedOptimizer fail (they expect
tf.Variable's ``ref``), so gradients are averaged here with ``hvd.grouped_allreduce`` and
the initial state is broadcast variable by variable through plain tensors.
"""
from __future__ import annotations

from typing import List, Sequence

import tensorflow as tf

__all__ = ["Distribution", "SingleProcess", "HorovodProcess", "make_distribution"]


class Distribution(object):
    rank = 0
    size = 1
    local_rank = 0

    @property
    def is_chief(self) -> bool:
        return self.rank == 0

    def average_gradients(self, grads: Sequence[tf.Tensor]) -> List[tf.Tensor]:
        return list(grads)

    def average(self, value: tf.Tensor) -> tf.Tensor:
        return value

    def broadcast_variables(self, variables: Sequence) -> None:
        pass

    def barrier(self) -> None:
        pass


class SingleProcess(Distribution):
    pass


class HorovodProcess(Distribution):
    def __init__(self) -> None:
        try:
            import horovod.tensorflow as hvd
        except ImportError as exc:
            raise RuntimeError("TRAIN.train_mode = \"parallel\" needs Horovod with TensorFlow support "
                               "(HOROVOD_WITH_TENSORFLOW=1 pip install horovod): %s" % exc) from None
        self.hvd = hvd
        hvd.init()
        self.rank, self.size, self.local_rank = hvd.rank(), hvd.size(), hvd.local_rank()
        # One GPU per process: the one matching the local rank (no-op on CPU-only hosts).
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            try:
                tf.config.set_visible_devices(gpus[self.local_rank % len(gpus)], "GPU")
                tf.config.experimental.set_memory_growth(gpus[self.local_rank % len(gpus)], True)
            except RuntimeError:  # already initialised by the caller: keep their choice
                pass

    def average_gradients(self, grads):
        grads = list(grads)
        if not grads:
            return grads
        return self.hvd.grouped_allreduce(grads, op=self.hvd.Average)

    def average(self, value):
        return self.hvd.allreduce(value, op=self.hvd.Average)

    def broadcast_variables(self, variables) -> None:
        for i, v in enumerate(variables):
            value = v.value if hasattr(v, "value") and not callable(v.value) else tf.convert_to_tensor(v)
            v.assign(self.hvd.broadcast(tf.identity(value), root_rank=0, name="init_state_%d" % i))

    def barrier(self) -> None:
        self.hvd.allreduce(tf.constant(0.0), name="barrier")


def make_distribution(train_mode: str) -> Distribution:
    if train_mode == "single":
        return SingleProcess()
    if train_mode == "parallel":
        return HorovodProcess()
    raise ValueError("TRAIN.train_mode must be single | parallel, got %r" % (train_mode,))
