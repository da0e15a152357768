"""The training-side commands' launchers: ``nothotdog-train``, ``nothotdog-eval``,
``nothotdog-export``.

A serving-only install (``pip install nothotdog``) still has these on its PATH, since a
distribution's scripts cannot depend on its extras. Their entry points are the launchers here,
which import the real command only when it runs (this module itself imports nothing of the
train extra), so a missing TensorFlow (or any other tool of the ``train`` extra) ends in one
line naming the extra to install, not a ModuleNotFoundError traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from nothotdog.contract.version import DISTRIBUTION, package_version

OWN_PACKAGES = frozenset({"nothotdog"})  # bot, contract, training, export live under it
EXIT_USAGE = 2  # argparse's status for a command that cannot run as asked


def train_extra_missing(prog: str, missing: str) -> str:
    return (
        f"{prog}: this install has only the bot (no module named {missing!r}); the training "
        f"tools need the train extra: pip install '{DISTRIBUTION}[train]'"
    )


def run_with_extra(prog: str, target: str, argv: Sequence[str] | None = None) -> int:
    """Run ``module:function`` (the real command); a tool of the train extra missing at import
    or while running (lazy imports) is reported in one line with exit status 2."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "--version" in args:  # answers even where the command itself cannot be imported
        print(f"{prog} {package_version()}")
        return 0
    module_name, _, function = target.partition(":")
    try:
        main: Callable[[list[str]], int] = getattr(importlib.import_module(module_name), function)
        return main(args)
    except ModuleNotFoundError as exc:
        root = (exc.name or "").partition(".")[0]
        if not root or root in OWN_PACKAGES:
            raise  # our own code is broken: that deserves its traceback
        print(train_extra_missing(prog, root), file=sys.stderr)
        return EXIT_USAGE


def train() -> int:
    return run_with_extra("nothotdog-train", "nothotdog.training.__main__:main")


def evaluate() -> int:
    return run_with_extra("nothotdog-eval", "nothotdog.training.evaluate:main")


def export() -> int:
    return run_with_extra("nothotdog-export", "nothotdog.export.__main__:main")
