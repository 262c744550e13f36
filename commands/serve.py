"""``openpose-plus serve --config /etc/openpose-plus/edge.toml [--set section.key=VALUE ...]``: the systemd daemon."""
from __future__ import annotations

import argparse
import logging
import sys

DEFAULT_CONFIG = "/etc/openpose-plus/edge.toml"


HELP = "the daemon (systemd Type=notify)"

def add_arguments(parser: argparse.ArgumentParser) -> None:
    from openpose_plus.edge.service.config import add_config_arguments

    add_config_arguments(parser, DEFAULT_CONFIG)
    parser.add_argument("--check", action="store_true", help="check the config and the bundle, then exit")


def setup_logging() -> None:
    # journald stamps time and unit; a level and a logger name are what it lacks.
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def run(args: argparse.Namespace) -> int:
    from openpose_plus.edge.service.config import ConfigError, load_config

    setup_logging()
    try:
        if args.check:
            from openpose_plus.edge.bundle import BundleError, load_bundle

            cfg = load_config(args.config, args.overrides)
            try:
                load_bundle(cfg.model.bundle)
            except BundleError as exc:
                raise ConfigError("%s: model.bundle: %s" % (args.config, exc)) from None
            print("%s: ok" % args.config)
            return 0
        from openpose_plus.edge.service.daemon import Daemon

        daemon = Daemon(args.config, overrides=args.overrides)
    except ConfigError as exc:
        print("openpose-plus serve: bad config: %s" % exc, file=sys.stderr)
        return 2
    return daemon.run()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="openpose-plus serve")
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # python -m openpose_plus.commands.serve
    sys.exit(main())
