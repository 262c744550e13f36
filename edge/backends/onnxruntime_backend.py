"""onnxruntime: the CPU path (and ORT's CUDA/TensorRT providers where installed).

Outputs are bound with I/O binding to arrays allocated once per buffer set, so a run
writes straight into the memory the grouping core reads; nothing is allocated per frame.
A batched buffer set ``(B, ...)`` of a dynamic-batch model runs its first ``n`` frames through
a binding of the same memory at ``(n, ...)`` (one per ``n``, made on first use and kept).
:func:`open_session` is the one place an ``onnxruntime.InferenceSession`` is made, for
this backend and for the benches, calibration and export alike.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence, Union

import numpy as np

from .base import Backend, BackendError, BufferSet

__all__ = ["OnnxRuntimeBackend", "import_onnxruntime", "open_session", "OPTIMIZATION_LEVELS", "CPU"]

OPTIMIZATION_LEVELS = ("disable", "basic", "extended", "all")
CPU = ["CPUExecutionProvider"]


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError("the onnxruntime backend needs onnxruntime (pip install onnxruntime): %s" % exc) from None
    return onnxruntime


def open_session(model: Union[str, bytes], threads: int = 0, providers: Optional[Sequence[str]] = None,
                 optimization: str = "all", spin: bool = False, save_optimized: Optional[str] = None):
    """An ``onnxruntime.InferenceSession`` on ``model`` (a path, or the ONNX bytes).

    ``threads``: intra-op threads (0: onnxruntime's default, all cores); ``providers``: in order
    of preference (default: CUDA where installed, then CPU; :data:`CPU` for the CPU only);
    ``optimization``: one of :data:`OPTIMIZATION_LEVELS`; ``spin``: let idle intra-op threads
    spin-wait (onnxruntime's default: it takes the cores capture, preprocessing and grouping
    need between two runs, so only a session alone on the machine wants it);
    ``save_optimized``: write the optimised graph there. :class:`BackendError` says why not.
    """
    ort = import_onnxruntime()
    if optimization not in OPTIMIZATION_LEVELS:
        raise BackendError("onnxruntime optimisation %r is not one of %s" % (optimization, ", ".join(OPTIMIZATION_LEVELS)))
    available = ort.get_available_providers()
    if providers is None:
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
    missing = [p for p in providers if p not in available]
    if missing:
        raise BackendError("onnxruntime providers %s are not available here (have: %s)"
                           % (", ".join(missing), ", ".join(available)))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL, "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED, "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    if save_optimized:
        opts.optimized_model_filepath = save_optimized
    try:
        return ort.InferenceSession(model, sess_options=opts, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        name = os.path.basename(model) if isinstance(model, str) else "the ONNX model (%d bytes)" % len(model)
        raise BackendError("onnxruntime cannot load %s: %s" % (name, exc)) from None


def _dims_match(declared: Sequence[object], want: Sequence[int]) -> bool:
    # Symbolic dims (strings/None) accept anything; numeric dims must agree.
    return len(declared) == len(want) and all(not isinstance(d, int) or d == w for d, w in zip(declared, want))


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, bundle, precision: str = "auto", providers: Optional[List[str]] = None,
                 threads: int = 0, spin: bool = False, batch: int = 0) -> None:
        if precision == "auto":
            precision = "fp32"
        if precision == "fp16":
            raise BackendError("onnxruntime runs the fp32 or int8 (QDQ) graph; fp16 needs the tensorrt backend")
        if precision not in ("fp32", "int8"):
            raise BackendError("unknown precision %r (fp32, fp16, int8, auto)" % precision)
        if precision == "int8" and "int8" not in bundle.models:
            raise BackendError("bundle %s has no int8 (QDQ) model for onnxruntime" % (bundle.source or bundle.path))
        super().__init__(bundle, precision, batch)
        self.session = open_session(bundle.model_path(precision), threads, providers, spin=spin)
        self.providers = self.session.get_providers()
        self._check_io()
        self.reason = "providers %s" % ", ".join(self.providers)

    def _check_io(self) -> None:
        b = self.bundle
        inputs = {i.name: i for i in self.session.get_inputs()}
        outputs = {o.name: o for o in self.session.get_outputs()}
        where = os.path.basename(b.model_path(self.precision))
        if list(inputs) != [b.input_name]:
            raise BackendError("%s takes inputs %s; the bundle says %r" % (where, list(inputs), b.input_name))
        inp = inputs[b.input_name]
        if inp.type != "tensor(uint8)" or not _dims_match(inp.shape, self.input_shape):
            first = inp.shape[0] if inp.shape else None
            hint = ""
            if isinstance(first, int) and first != self.batch and list(inp.shape[1:]) == list(self.input_shape[1:]):
                hint = " (its batch is fixed at %d, the bundle says %s: export or import it again with --batch)" % (
                    first, b.batch.describe())
            raise BackendError("%s input %r is %s %s; the bundle says uint8 %s%s"
                               % (where, b.input_name, inp.type, inp.shape, list(self.input_shape), hint))
        for name, shape in ((b.heatmaps_name, self.heatmap_shape), (b.pafs_name, self.paf_shape)):
            if name not in outputs:
                raise BackendError("%s has no output %r (it has %s)" % (where, name, sorted(outputs)))
            out = outputs[name]
            if out.type != "tensor(float)" or not _dims_match(out.shape, shape):
                raise BackendError("%s output %r is %s %s; the bundle's skeleton and stride need float %s"
                                   % (where, name, out.type, out.shape, list(shape)))

    def new_buffers(self) -> BufferSet:
        b = self.bundle
        inp = np.full(self.input_shape, b.pad_value, np.uint8)
        heat = np.zeros(self.heatmap_shape, np.float32)
        paf = np.zeros(self.paf_shape, np.float32)
        bufs = BufferSet(inp, heat, paf, {})
        bufs.handle[self.batch] = self._bind(bufs, self.batch)
        self._buffers.append(bufs)
        return bufs

    def _bind(self, bufs: BufferSet, n: int):
        """An I/O binding of the first ``n`` frames of ``bufs`` (the same memory, shape ``(n, ...)``)."""
        b = self.bundle
        binding = self.session.io_binding()
        for bind, name, arr, dtype in ((binding.bind_input, b.input_name, bufs.input, np.uint8),
                                       (binding.bind_output, b.heatmaps_name, bufs.heatmaps, np.float32),
                                       (binding.bind_output, b.pafs_name, bufs.pafs, np.float32)):
            bind(name, "cpu", 0, dtype, [n] + list(arr.shape[1:]), arr.ctypes.data)
        return binding

    def infer(self, buffers: BufferSet, n: Optional[int] = None) -> None:
        n = self.frames_to_run(n)
        binding = buffers.handle.get(n)
        if binding is None:
            binding = buffers.handle[n] = self._bind(buffers, n)
        try:
            self.session.run_with_iobinding(binding)
        except Exception as exc:  # onnxruntime's own error kinds
            if n == 1:
                raise
            raise BackendError("onnxruntime could not run %d frames at once (does the graph hard-code batch 1? "
                               "the export's batch check would have said): %s" % (n, exc)) from None

    def bound_output_pointers(self, buffers: BufferSet):
        """Where onnxruntime says it wrote the outputs (for checking the zero-copy path)."""
        return [int(v.data_ptr()) for v in buffers.handle[self.batch].get_outputs()]

    def close(self) -> None:
        super().close()
        self.session = None
