"""Instructions per frame of the C grouping core, counted by callgrind (timing noise does not touch it).

Groups the clean frames of ``openpose-plus bench group`` (46x54 maps, COCO-18, the bench's seed
for each people count) once each, under callgrind collecting inside ``opp_group`` only, and
prints the count per frame. Usage (valgrind installed)::

    python scripts/callgrind_group.py [--frames 20] [--people 1,5,10,20] [--group FIELD=VALUE ...]
        [--module path/to/_paf*.so]   # another build of the core, e.g. -DOPP_NO_SIMD_CLONES

Run by hand; not a test.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
import tempfile


def child(people: int, frames: int, group, module) -> None:
    """The measured process: build the frames, then group each once."""
    if module:
        spec = importlib.util.spec_from_file_location(os.path.basename(module).split(".")[0], module)
        core = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(core)
        sys.modules["openpose_plus.edge._paf"] = core
    import numpy as np

    from openpose_plus.benches.group import make_frames
    from openpose_plus.edge.grouping import GroupParams, Grouper, parse_overrides
    from openpose_plus.edge.skeleton import COCO18

    grouper = Grouper(COCO18, 46, 54, GroupParams(**parse_overrides(group)))
    for _, heat, paf, _, _ in make_frames(np.random.default_rng(people), people, 46, 54, frames, 0.05):
        grouper.group(heat, paf)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--people", default="1,5,10,20")
    parser.add_argument("--group", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--module", help="another build of the core (a _paf*.so)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, args.frames, args.group, args.module)
        return 0
    for people in (int(p) for p in args.people.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = ["valgrind", "--tool=callgrind", "--toggle-collect=opp_group",
                   "--callgrind-out-file=%s/out" % tmp, sys.executable, os.path.abspath(__file__),
                   "--child", str(people), "--frames", str(args.frames)]
            cmd += ["--group=%s" % g for g in args.group] + (["--module", args.module] if args.module else [])
            log = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
        total = int(re.search(r"Collected : (\d+)", log).group(1))
        print("%2d people: %d instructions per frame" % (people, total // args.frames), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
