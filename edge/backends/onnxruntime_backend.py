"""onnxruntime: the CPU path (and ORT's CUDA/TensorRT providers where installed).

Outputs are bound with I/O binding to arrays allocated once per buffer set, so a run
writes straight into the memory the grouping core reads; nothing is allocated per frame.
"""
from __future__ import annotations

import os
from typing import List, Optional, Sequence

import numpy as np

from .base import Backend, BackendError, BufferSet

__all__ = ["OnnxRuntimeBackend", "import_onnxruntime"]


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as exc:
        raise BackendError("the onnxruntime backend needs onnxruntime (pip install onnxruntime): %s" % exc) from None
    return onnxruntime


def _dims_match(declared: Sequence[object], want: Sequence[int]) -> bool:
    # Symbolic dims (strings/None) accept anything; numeric dims must agree.
    return len(declared) == len(want) and all(not isinstance(d, int) or d == w for d, w in zip(declared, want))


class OnnxRuntimeBackend(Backend):
    name = "onnxruntime"

    def __init__(self, bundle, precision: str = "auto", providers: Optional[List[str]] = None,
                 threads: int = 0, spin: bool = False) -> None:
        if precision == "auto":
            precision = "fp32"
        if precision == "fp16":
            raise BackendError("onnxruntime runs the fp32 or int8 (QDQ) graph; fp16 needs the tensorrt backend")
        if precision not in ("fp32", "int8"):
            raise BackendError("unknown precision %r (fp32, fp16, int8, auto)" % precision)
        if precision == "int8" and "int8" not in bundle.models:
            raise BackendError("bundle %s has no int8 (QDQ) model for onnxruntime" % (bundle.source or bundle.path))
        super().__init__(bundle, precision)
        ort = import_onnxruntime()
        self._ort = ort
        available = ort.get_available_providers()
        if providers is None:
            providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]
        missing = [p for p in providers if p not in available]
        if missing:
            raise BackendError("onnxruntime providers %s are not available here (have: %s)"
                               % (", ".join(missing), ", ".join(available)))
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        # Idle intra-op threads spin-wait by default, taking the cores capture, preprocessing
        # and grouping need between two runs; in a pipeline that costs more than it saves.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        path = bundle.model_path(precision)
        try:
            self.session = ort.InferenceSession(path, sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise BackendError("onnxruntime cannot load %s: %s" % (os.path.basename(path), exc)) from None
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
            raise BackendError("%s input %r is %s %s; the bundle says uint8 %s"
                               % (where, b.input_name, inp.type, inp.shape, list(self.input_shape)))
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
        binding = self.session.io_binding()
        binding.bind_input(b.input_name, "cpu", 0, np.uint8, list(inp.shape), inp.ctypes.data)
        binding.bind_output(b.heatmaps_name, "cpu", 0, np.float32, list(heat.shape), heat.ctypes.data)
        binding.bind_output(b.pafs_name, "cpu", 0, np.float32, list(paf.shape), paf.ctypes.data)
        bufs = BufferSet(inp, heat, paf, binding)
        self._buffers.append(bufs)
        return bufs

    def infer(self, buffers: BufferSet) -> None:
        self.session.run_with_iobinding(buffers.handle)

    def bound_output_pointers(self, buffers: BufferSet):
        """Where onnxruntime says it wrote the outputs (for checking the zero-copy path)."""
        return [int(v.data_ptr()) for v in buffers.handle.get_outputs()]

    def close(self) -> None:
        super().close()
        self.session = None
