"""``openpose-plus serve --config /etc/openpose-plus/edge.toml [--set section.key=VALUE ...]``: the systemd daemon."""
from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Set

DEFAULT_CONFIG = "/etc/openpose-plus/edge.toml"


HELP = "the daemon (systemd Type=notify)"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from openpose_plus.edge.service.config import add_config_arguments

    add_config_arguments(parser, DEFAULT_CONFIG)
    parser.add_argument("--check", action="store_true",
                        help="check the config, the bundle and that the outputs can work here, then exit")


def setup_logging() -> None:
    # journald stamps time and unit; a level and a logger name are what it lacks.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def _hold_signals() -> Set[int]:
    """Take SIGTERM, SIGINT and SIGHUP now, before anything slow (reading the config, loading
    the model): their default is to kill the process. The daemon acts on them once it runs."""
    pending: Set[int] = set()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda signum, _frame: pending.add(signum))
    return pending


def check(path: str, overrides) -> int:
    from openpose_plus.edge.bundle import BundleError, load_bundle
    from openpose_plus.edge.service.config import ConfigError, load_config
    from openpose_plus.edge.service.preflight import preflight

    cfg = load_config(path, overrides)
    try:
        load_bundle(cfg.model.bundle)
    except BundleError as exc:
        raise ConfigError("%s: model.bundle: %s" % (path, exc)) from None
    errors, warnings = preflight(cfg, strict=False)
    for text in warnings:
        print("openpose-plus serve: warning: %s (in %s)" % (text, path), file=sys.stderr)
    if errors:
        raise ConfigError("; ".join(errors) + " (in %s)" % path)
    print("%s: ok" % path)
    return 0


def run(args: argparse.Namespace) -> int:
    pending = set() if args.check else _hold_signals()
    from openpose_plus.edge.service.config import ConfigError

    setup_logging()
    try:
        if args.check:
            return check(args.config, args.overrides)
        from openpose_plus.edge.service.daemon import Daemon

        daemon = Daemon(args.config, overrides=args.overrides)
    except ConfigError as exc:
        print("openpose-plus serve: bad config: %s" % exc, file=sys.stderr)
        return 2
    return daemon.run(pending)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="openpose-plus serve")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # python -m openpose_plus.commands.serve
    sys.exit(main())
