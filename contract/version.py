"""``--version`` for every console script: the installed distribution's version."""

from __future__ import annotations

import argparse
from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "nothotdog"


def package_version() -> str:
    """The installed distribution's version; a bare checkout on PYTHONPATH has none."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "unknown (not installed; run from a checkout)"


def add_version(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--version`` on ``parser``, printing ``PROG VERSION``."""
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    return parser
