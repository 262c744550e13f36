"""API conformance: every TensorRT, pycuda and jetson-utils name the project uses exists in every
generation the path using it serves, read from the committed table of the real bindings
(tests/standins/api_table.json, written by scripts/api_table.py; nothing is downloaded here).
The walker (tests/api_walker.py) reads the convention edge/backends/trt_api.py describes."""
from __future__ import annotations

import json

import pytest

import api_walker as W
from standins import surface, tensorrt_standin, pycuda_driver
from openpose_plus.edge.backends import trt_api

TABLE = surface.table()


def test_the_table_has_every_generation_and_the_facts_the_code_relies_on():
    trt = TABLE["tensorrt"]
    assert trt["columns"] == list(trt_api.GENERATIONS) == ["8.5", "8.6", "10.3", "10.13", "11.4"]
    assert TABLE["pycuda.driver"]["columns"] == ["2026.1"] and TABLE["jetson_utils"]["columns"] == ["master"]

    def cols(name):
        return [c for c in trt["columns"] if name in surface.names("tensorrt", c)]

    # what TensorRT 11 removed (NVIDIA's 10.x -> 11.x migration guide), as the bindings show it
    for gone in ("BuilderFlag.FP16", "BuilderFlag.INT8", "IBuilderConfig.int8_calibrator", "IInt8EntropyCalibrator2",
                 "IInt8MinMaxCalibrator", "Builder.platform_has_fast_fp16", "Builder.platform_has_fast_int8",
                 "NetworkDefinitionCreationFlag.EXPLICIT_BATCH"):
        assert cols(gone) == ["8.5", "8.6", "10.3", "10.13"], gone
    assert cols("NetworkDefinitionCreationFlag.STRONGLY_TYPED") == ["10.3", "10.13", "11.4"]
    assert cols("IProgressMonitor") == ["10.3", "10.13", "11.4"]  # not in 8.6's Python bindings
    for everywhere in ("Runtime.DLA_core", "ICudaEngine.get_tensor_dtype", "IExecutionContext.execute_async_v3",
                       "IBuilderConfig.create_timing_cache", "IOptimizationProfile.set_shape", "DataType.UINT8",
                       "BuilderFlag.GPU_FALLBACK", "__version__"):
        assert cols(everywhere) == trt["columns"], everywhere
    py = surface.names("pycuda.driver", "2026.1")
    assert {"Device.retain_primary_context", "Context.push", "Context.pop", "Context.detach", "Event.synchronize",
            "event_flags.BLOCKING_SYNC", "HostAllocation.get_device_pointer", "LogicError"} <= py
    ju = surface.names("jetson_utils", "master")
    assert {"videoSource.Capture", "videoSource.IsStreaming", "cudaImage.freeOnDelete", "cudaToNumpy"} <= ju
    sources = trt["sources"]
    assert sources["8.6"]["wheel"] == "tensorrt-bindings==8.6.1" and "8.5.2" in sources["8.5"]["source"]
    assert sources["11.4"]["wheel"].endswith("11.4.0.106") and "v11.1" in sources["11.4"]["source"]


def test_the_walker_and_the_runtime_agree_on_column_floors():
    assert {c: f for c, f in W.FLOORS.items()} == trt_api.FLOORS
    for column, floor in trt_api.FLOORS.items():
        assert trt_api.Generation("%d.%d.0" % floor).column == column


@pytest.fixture(scope="module")
def project():
    return W.walk_project()


def test_every_library_name_the_project_uses_exists_where_it_is_used(project):
    assert project.errors == []


def test_the_walk_sees_the_library_code(project):
    """The convention is followed: the names on every path reach the walker (not hidden in untyped values)."""
    used = {(u.library, u.name) for u in project.uses}
    must = {("tensorrt", n) for n in ("Builder.create_network", "OnnxParser.parse", "IBuilderConfig.set_flag",
                                      "BuilderFlag.FP16", "NetworkDefinitionCreationFlag.STRONGLY_TYPED",
                                      "IInt8EntropyCalibrator2.read_calibration_cache", "IProgressMonitor.step_complete",
                                      "Runtime.DLA_core", "Runtime.deserialize_cuda_engine",
                                      "ICudaEngine.get_tensor_dtype", "IExecutionContext.execute_async_v3",
                                      "IExecutionContext.set_input_shape", "IOptimizationProfile.set_shape",
                                      "IBuilderConfig.set_timing_cache", "ITimingCache.serialize")}
    must |= {("pycuda.driver", n) for n in ("Device.retain_primary_context", "Context.push", "Context.pop",
                                            "pagelocked_empty", "HostAllocation.get_device_pointer",
                                            "Event.synchronize")}
    must |= {("jetson_utils", n) for n in ("videoSource", "videoSource.Capture")}
    assert must <= used, sorted(must - used)
    # the FP16/INT8 flags and calibrators are used only on paths that serve 8.x/10.x
    for u in project.uses:
        if u.name in ("BuilderFlag.FP16", "BuilderFlag.INT8", "IBuilderConfig.int8_calibrator") or \
                u.name.startswith("IInt8"):
            assert "11.4" not in u.columns, u
        if u.name.startswith("IProgressMonitor") or u.name == "NetworkDefinitionCreationFlag.STRONGLY_TYPED":
            assert not u.columns & {"8.5", "8.6"}, u


@pytest.mark.parametrize("source, error", [
    # a removed name on a path serving every generation
    ('def f(trt, config: "trt.IBuilderConfig"):\n    config.set_flag(trt.BuilderFlag.FP16)\n',
     "BuilderFlag.FP16, which tensorrt 11.4 lacks"),
    # getattr with a default does not hide it
    ('def f(builder: "trt.Builder"):\n    return getattr(builder, "platform_has_fast_int8", True)\n',
     "Builder.platform_has_fast_int8, which tensorrt 11.4 lacks"),
    # a name no generation has (a typo)
    ('def f(engine: "trt.ICudaEngine"):\n    return engine.get_tensor_dtypes("x")\n',
     "ICudaEngine.get_tensor_dtypes, which tensorrt 8.5, 8.6, 10.3, 10.13, 11.4 lacks"),
    # an untyped library value
    ('def f(trt, logger):\n    builder = trt.Builder(logger)\n    return builder.num_DLA_cores\n',
     "builder holds a library value with no annotated type"),
    ('class S:\n    def open(self):\n        self._src = jetson_utils.videoSource("x")\n'
     '    def read(self):\n        return self._src.Capture()\n', "self._src holds a library value"),
    # a call's result used directly
    ('def f(config: "trt.IBuilderConfig"):\n    return config.get_timing_cache().serialize()\n',
     "of a library call's result"),
    # a @serves function called from a wider path
    ('@serves("10.3", "10.13", "11.4")\ndef g(trt):\n    pass\n\ndef f(trt):\n    g(trt)\n',
     "calls g (serves {10.3, 10.13, 11.4}) from a path serving {8.5, 8.6, 10.3, 10.13, 11.4}"),
    # an override TensorRT does not have
    ('def f(trt):\n    if hasattr(trt, "IProgressMonitor"):\n        class M(trt.IProgressMonitor):\n'
     '            def step_completed(self, phase, step):\n                return True\n',
     "overrides IProgressMonitor.step_completed"),
    # a gate that is not a column's floor
    ('def f(trt, gen):\n    if gen.at_least("10.5"):\n        pass\n', "gate on a column's floor"),
    # pycuda and jetson-utils names
    ('def f(cuda):\n    cuda.Device(0).retain_primary_contex()\n', "of a library call's result"),
    ('def f(cuda, dev: "cuda.Device"):\n    dev.retain_primary_contex()\n',
     "pycuda.driver Device.retain_primary_contex, which pycuda.driver 2026.1 lacks"),
    ('def f(jetson_utils):\n    return jetson_utils.cudaToNumPy\n', "jetson_utils cudaToNumPy, which"),
])
def test_the_walker_catches(source, error):
    report = W.walk_source(source)
    assert any(error in e for e in report.errors), report.errors


@pytest.mark.parametrize("source", [
    # the same uses on paths that serve only generations having them
    'def f(trt, gen, config: "trt.IBuilderConfig"):\n    if gen.below("11.0"):\n'
    '        config.set_flag(trt.BuilderFlag.FP16)\n',
    'def f(trt, gen, config: "trt.IBuilderConfig"):\n    if gen.at_least("11.0"):\n        return\n'
    '    config.set_flag(trt.BuilderFlag.INT8)\n',
    '@serves("8.5", "8.6", "10.3", "10.13")\ndef f(trt, config: "trt.IBuilderConfig"):\n'
    '    config.int8_calibrator = None\n',
    'def f(trt, config: "trt.IBuilderConfig"):\n    if hasattr(trt, "IProgressMonitor"):\n'
    '        class M(trt.IProgressMonitor):\n            def phase_start(self, a, b, c):\n                pass\n'
    '        config.progress_monitor = M()\n',
    'def f(trt, gen):\n    if gen.below("10.0"):\n        return 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)\n'
    '    return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)\n',
    'def f(a: "Union[cuda.HostAllocation, cuda.DeviceAllocation]"):\n    a.free()\n',
])
def test_the_walker_accepts(source):
    assert W.walk_source(source).errors == []


@pytest.mark.parametrize("library, module", [("tensorrt", tensorrt_standin), ("pycuda.driver", pycuda_driver)])
def test_the_stand_ins_invent_no_api(library, module):
    """Every public name a stand-in implements is one the real library has in some generation."""
    assert surface.invented(library, vars(module), module.EXPORTS) == set()


@pytest.mark.parametrize("column", trt_api.GENERATIONS)
def test_each_tensorrt_stand_in_has_exactly_its_generation_s_names(column):
    """For every name implemented: present in the stand-in of a column exactly when the table says so."""
    module = tensorrt_standin.load(column)
    have = surface.names("tensorrt", column)
    checked = 0
    for export in tensorrt_standin.EXPORTS:
        impl = getattr(tensorrt_standin, export)
        if not isinstance(impl, type):
            assert hasattr(module, export) == (export in have)
            continue
        assert hasattr(module, export) == (export in have), export
        if export not in have:
            continue
        cls = getattr(module, export)
        for member in surface.public_members(impl):
            qual = "%s.%s" % (export, member)
            assert hasattr(cls, member) == (qual in have), qual
            checked += 1
    assert checked > 60


def test_the_table_is_what_the_script_writes():
    """The committed table parses, lists each name once, and says where each came from."""
    with open(surface.TABLE) as f:
        doc = json.load(f)
    assert doc["generated_by"].startswith("scripts/api_table.py")
    for lib in doc["libraries"].values():
        for name, cols in lib["names"].items():
            assert cols == "*" or set(cols.split()) <= set(lib["columns"]), (name, cols)
