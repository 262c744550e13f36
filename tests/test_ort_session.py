"""The one onnxruntime session factory: a path or the bytes, threads, providers, optimisation."""
import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from edge_fixtures import tiny_pose_onnx  # noqa: E402
from openpose_plus.edge.backends import BackendError  # noqa: E402
from openpose_plus.edge.backends.onnxruntime_backend import CPU, OPTIMIZATION_LEVELS, open_session  # noqa: E402


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    data = tiny_pose_onnx(96, 64)
    path = tmp_path_factory.mktemp("ort") / "model.onnx"
    path.write_bytes(data)
    return str(path), data


def test_a_path_and_the_bytes_give_the_same_maps_at_every_level(model):
    path, data = model
    image = np.random.default_rng(0).integers(0, 256, (1, 64, 96, 3), dtype=np.uint8)
    reference = open_session(path, providers=CPU).run(None, {"image": image})
    for level in OPTIMIZATION_LEVELS:
        session = open_session(data, threads=1, providers=CPU, optimization=level)
        assert session.get_providers() == CPU
        for got, want in zip(session.run(None, {"image": image}), reference):
            np.testing.assert_allclose(got, want, atol=1e-5)


def test_options_reach_the_session(model, tmp_path):
    path, _ = model
    saved = tmp_path / "optimised.onnx"
    open_session(path, providers=CPU, optimization="basic", save_optimized=str(saved))
    import onnx

    onnx.checker.check_model(onnx.load(str(saved)))  # the optimised graph, written where asked
    default = open_session(path)  # CUDA where installed, then the CPU
    assert default.get_providers()[-1] == "CPUExecutionProvider"


def test_what_cannot_open_is_said(model):
    path, data = model
    with pytest.raises(BackendError, match="providers NoSuchExecutionProvider are not available here"):
        open_session(path, providers=["NoSuchExecutionProvider"])
    with pytest.raises(BackendError, match="optimisation 'most' is not one of disable, basic, extended, all"):
        open_session(path, optimization="most")
    with pytest.raises(BackendError, match=r"cannot load the ONNX model \(10 bytes\)"):
        open_session(b"not a net!", providers=CPU)
    with pytest.raises(BackendError, match="cannot load model.onnx"):
        open_session(path.replace("model.onnx", "missing/model.onnx"), providers=CPU)
