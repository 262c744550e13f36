"""CMU OpenPose's weights as caffe publishes them: a ``.caffemodel`` read without caffe.

A ``.caffemodel`` is a caffe ``NetParameter`` protobuf. The few message fields the weights live
in (numbered as in BVLC caffe.proto) are declared here with the ``protobuf`` package's
descriptors, so no compiled caffe module is needed; both the ``layer`` (current) and ``layers``
(V1) forms are read. Training loads CMU's weights into its ``vgg`` network with it
(``host_training/weights.py``) and ``openpose-plus import`` builds a whole CMU network from it
and the prototxt (``calibration/importers/caffe.py``): one reader, here, where both may import it.
protobuf is imported when a file is read (onnx and onnxruntime bring it; the runtime never needs it).
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np

__all__ = ["CaffeModelError", "read_caffemodel"]


class CaffeModelError(ValueError):
    """A caffemodel that cannot be read; the message names the file and what is wrong."""


def _caffe_net_class():
    """A ``NetParameter`` message class holding just the fields the weights live in."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="openpose_plus_caffe_weights.proto",
                                             package="openpose_plus_caffe", syntax="proto2")

    def message(name, fields):
        m = fdp.message_type.add(name=name)
        for fname, number, ftype, label, type_name, packed in fields:
            f = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                f.type_name = ".openpose_plus_caffe." + type_name
            if packed:
                f.options.packed = True

    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    # Field numbers from BVLC caffe.proto.
    message("BlobShape", [("dim", 1, F.TYPE_INT64, rep, None, True)])
    message("BlobProto", [("shape", 7, F.TYPE_MESSAGE, opt, "BlobShape", False),
                          ("data", 5, F.TYPE_FLOAT, rep, None, True),
                          ("double_data", 8, F.TYPE_DOUBLE, rep, None, True),
                          ("num", 1, F.TYPE_INT32, opt, None, False),
                          ("channels", 2, F.TYPE_INT32, opt, None, False),
                          ("height", 3, F.TYPE_INT32, opt, None, False),
                          ("width", 4, F.TYPE_INT32, opt, None, False)])
    message("LayerParameter", [("name", 1, F.TYPE_STRING, opt, None, False),
                               ("type", 2, F.TYPE_STRING, opt, None, False),
                               ("blobs", 7, F.TYPE_MESSAGE, rep, "BlobProto", False)])
    message("V1LayerParameter", [("name", 4, F.TYPE_STRING, opt, None, False),
                                 ("blobs", 6, F.TYPE_MESSAGE, rep, "BlobProto", False)])
    message("NetParameter", [("name", 1, F.TYPE_STRING, opt, None, False),
                             ("layer", 100, F.TYPE_MESSAGE, rep, "LayerParameter", False),
                             ("layers", 2, F.TYPE_MESSAGE, rep, "V1LayerParameter", False)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("openpose_plus_caffe.NetParameter"))


def _blob_array(blob, where: str) -> np.ndarray:
    if blob.HasField("shape"):
        shape = tuple(int(d) for d in blob.shape.dim)
    else:  # legacy 4-D blobs
        shape = tuple(int(getattr(blob, k)) for k in ("num", "channels", "height", "width"))
    values = np.asarray(blob.data if len(blob.data) else blob.double_data, dtype=np.float32)
    if values.size != int(np.prod(shape)):
        raise CaffeModelError("%s: blob holds %d values but its shape %s needs %d"
                              % (where, values.size, shape, int(np.prod(shape))))
    return values.reshape(shape)


def read_caffemodel(path) -> Dict[str, List[np.ndarray]]:
    """``{layer name: [blob, ...]}`` of every layer with weights in a ``.caffemodel``."""
    from google.protobuf.message import DecodeError

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CaffeModelError("%s: cannot read: %s" % (path, exc.strerror or exc)) from None
    net = _caffe_net_class()()
    try:
        net.ParseFromString(raw)
    except DecodeError as exc:
        raise CaffeModelError("%s: not a caffemodel, or truncated (%s)" % (path, exc)) from None
    out: Dict[str, List[np.ndarray]] = {}
    for layer in list(net.layer) + list(net.layers):
        if len(layer.blobs):
            out[layer.name] = [_blob_array(b, "%s: layer %s" % (path, layer.name)) for b in layer.blobs]
    if not out:
        raise CaffeModelError("%s: no layer with weights in it (is it a deploy prototxt, or empty?)" % path)
    return out
