"""Shared test set-up.

``OPP_PAF_MODULE=/path/to/_paf_sanitized....so`` makes the grouping tests run against an
instrumented build of the C core (``cffi_build/sanitize.sh``) instead of the installed
extension: the module is registered as ``openpose_plus.edge._paf`` before anything imports
it. Production code knows nothing of this.
"""
import gc
import importlib.util
import os
import sys


def _use_paf_module(path: str) -> None:
    name = os.path.basename(path).split(".")[0]  # the name cffi compiled it under
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise RuntimeError("OPP_PAF_MODULE=%r is not a loadable extension" % path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    sys.modules["openpose_plus.edge._paf"] = module


if os.environ.get("OPP_PAF_MODULE"):
    _use_paf_module(os.environ["OPP_PAF_MODULE"])


def pytest_collection_finish(session) -> None:
    # What collection imported (TensorFlow among it: millions of objects) lives all run long:
    # set it aside from the cyclic collector, so the tests' own gc.collect() calls (checks
    # that what they made is gone) walk only what the tests made, not TensorFlow each time.
    gc.freeze()
