"""Our packages install under one namespace, ``nothotdog`` (pyproject.toml, issue 12): the
folders ``bot/``, ``contract/``, ``training/``, ``export/`` and ``fakebot/`` are imported as
``nothotdog.bot`` and so on. A bare ``import bot`` would work from the repository root by
accident (the folder is on sys.path) and fail in an install, so it is caught here."""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("bot", "contract", "training", "export", "fakebot", "tests", "bench")
BARE = re.compile(r"^\s*(from|import)\s+(bot|contract|training|export|fakebot)\b", re.MULTILINE)
BARE_MODULE = re.compile(r"""(-m["',\s]+)(bot|contract|training|export|fakebot)\b""")


def _sources() -> list[Path]:
    this = Path(__file__).resolve()
    return sorted(p for f in FOLDERS for p in (REPO / f).rglob("*.py") if p.resolve() != this)


def test_no_bare_imports_of_our_packages():
    found = [
        f"{path.relative_to(REPO)}:{text.count(chr(10), 0, hit.start()) + 1}: {hit.group(0)}"
        for path in _sources()
        for text in [path.read_text(encoding="utf-8")]
        for hit in BARE.finditer(text)
    ]
    assert not found, "import these as nothotdog.<package>:\n" + "\n".join(found)


def test_no_bare_python_dash_m():
    """``python -m bot`` in code, deploy files and docs: it must be ``-m nothotdog.bot``."""
    others = [REPO / "Makefile", REPO / "README.md", *(REPO / "deploy").rglob("*"),
              *(REPO / "docs").glob("*.md"), *(REPO / "bench").glob("*.md")]  # fmt: skip
    found = [
        f"{path.relative_to(REPO)}: {hit.group(0)}"
        for path in [*_sources(), *others]
        if path.is_file() and path.suffix not in {".png", ".jpg"}
        for hit in BARE_MODULE.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not found, "\n".join(found)


def test_the_namespace_is_implicit():
    """``nothotdog`` has no folder and no ``__init__.py`` (PEP 420): nothing in the checkout
    shadows the installed namespace when the tests run from the repository root."""
    import nothotdog
    import nothotdog.bot

    assert not (REPO / "nothotdog").exists()
    assert getattr(nothotdog, "__file__", None) is None  # a namespace package has no file
    assert Path(nothotdog.bot.__file__).name == "__init__.py"
    assert "bot" not in sys.modules  # nothing imported the folder under its bare name
