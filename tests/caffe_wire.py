"""A caffemodel written byte by byte in the protobuf wire format, independently of the reader
(which uses the protobuf library): for the weight-import tests and the Caffe importer's."""
from __future__ import annotations

import numpy as np

__all__ = ["varint", "field_bytes", "field_varint", "blob_bytes", "caffemodel_bytes"]


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number: int, payload: bytes) -> bytes:
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def field_varint(number: int, value: int) -> bytes:
    return varint(number << 3 | 0) + varint(value)


def blob_bytes(array: np.ndarray, legacy: bool) -> bytes:
    data = field_bytes(5, array.astype("<f4").tobytes())  # packed repeated float
    if legacy:  # num/channels/height/width instead of BlobShape
        dims = (list(array.shape) + [1, 1, 1, 1])[:4] if array.ndim == 4 else [1, 1, 1, array.shape[0]]
        return b"".join(field_varint(n, d) for n, d in zip((1, 2, 3, 4), dims)) + data
    shape = field_bytes(1, b"".join(varint(d) for d in array.shape))  # packed int64 dims
    return field_bytes(7, shape) + data


def caffemodel_bytes(blobs, v1: bool = False) -> bytes:
    out = [field_bytes(1, b"OpenPose - COCO")]
    # A weightless layer first, as in a real net (data/ReLU/pool layers carry no blobs).
    if v1:
        out.append(field_bytes(2, field_bytes(4, b"relu1_1") + field_varint(5, 18)))
    else:
        out.append(field_bytes(100, field_bytes(1, b"relu1_1") + field_bytes(2, b"ReLU")))
    for name, arrays in blobs.items():
        blob_msgs = [blob_bytes(a, legacy=v1) for a in arrays]
        if v1:  # V1LayerParameter: name = 4, type (enum) = 5, blobs = 6; NetParameter.layers = 2
            body = field_bytes(4, name.encode()) + field_varint(5, 4) + b"".join(field_bytes(6, m) for m in blob_msgs)
            out.append(field_bytes(2, body))
        else:  # LayerParameter: name = 1, type = 2, blobs = 7; NetParameter.layer = 100
            body = field_bytes(1, name.encode()) + field_bytes(2, b"Convolution") + \
                b"".join(field_bytes(7, m) for m in blob_msgs)
            out.append(field_bytes(100, body))
    return b"".join(out)
