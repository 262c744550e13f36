"""``openpose-plus download-coco [DEST]``: COCO 2017 person keypoints into ``dataset/coco17``.

Resumable (run it again after an interruption), size- and checksum-verified, with a progress
bar; a file that does not verify is deleted and reported, never trained on.
"""
from __future__ import annotations

import argparse
import sys

from openpose_plus.host_training.data.download import COCO2017, DownloadError, download_all, load_manifest

__all__ = ["add_arguments", "run"]


HELP = "fetch COCO 2017 person keypoints"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dest", nargs="?", default="dataset/coco17", help="destination (default: dataset/coco17)")
    parser.add_argument("--sets", default=None,
                        help="comma-separated names from the manifest: annotations, val2017, train2017 "
                             "(default: all; train2017 is 19 GB)")
    parser.add_argument("--manifest", metavar="JSON",
                        help="another list of files ({name, url, size, md5, sha256}), e.g. a mirror's")
    parser.add_argument("--base-url", metavar="URL",
                        help="fetch from a mirror: replaces http://images.cocodataset.org/ in every URL")
    parser.add_argument("--no-extract", action="store_true", help="keep the zips, do not unpack them")
    parser.add_argument("--remove-archives", action="store_true", help="delete each zip once it is unpacked")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    try:
        artifacts = load_manifest(args.manifest) if args.manifest else list(COCO2017)
        if args.base_url:
            base = args.base_url.rstrip("/") + "/"
            from dataclasses import replace

            artifacts = [replace(a, url=a.url.replace("http://images.cocodataset.org/", base)) for a in artifacts]
        names = [s.strip() for s in args.sets.split(",") if s.strip()] if args.sets else None
        download_all(artifacts, args.dest, names=names, extract_archives=not args.no_extract,
                     remove_archives=args.remove_archives, show_progress=not args.quiet)
    except DownloadError as exc:
        print("download-coco: %s" % exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("download-coco: interrupted; run it again to resume", file=sys.stderr)
        return 130
    return 0
