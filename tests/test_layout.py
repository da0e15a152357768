"""How the folders fit together.

Our packages install under one namespace, ``nothotdog`` (pyproject.toml): the folders ``bot/``,
``contract/``, ``training/`` and ``export/`` are imported as ``nothotdog.bot`` and so on. A bare
``import bot`` would work from the repository root by accident (the folder is on sys.path) and
fail in an install, so it is caught here. The fake Bot API is a test tool, not installed: it is
``tests.fakebot``, imported from the checkout by the tests and the benchmarks.

Imports between the rooms go one way: contract <- training <- export (and contract <- bot), and
no product module takes part in an import cycle, through imports inside functions included.
Files and classes stay small enough to read in one sitting.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("bot", "contract", "training", "export", "tests", "bench")
PRODUCT = ("bot", "contract", "training", "export")  # what pip install . ships
MAX_FILE_LINES = 400
MAX_CLASS_LINES = 200
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
    assert not found, "import these as nothotdog.<package> (and tests.fakebot):\n" + "\n".join(
        found
    )


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


def _imports(folder: str) -> dict[str, set[str]]:
    """Every module each file of ``folder`` imports, at the top or inside a function."""
    found: dict[str, set[str]] = {}
    for path in sorted((REPO / folder).rglob("*.py")):
        names = found.setdefault(str(path.relative_to(REPO)), set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return found


def _offending(folder: str, allowed) -> list[str]:
    return [f"{path}: {name}" for path, names in _imports(folder).items()
            for name in sorted(names) if not allowed(name)]  # fmt: skip


def test_training_imports_nothing_from_export():
    """The direction is training -> export: export converts and quantizes what training made
    and may use training's code (the model, the int8 quantizer, the metrics); training never
    imports export, so the shared helpers live in training and the rooms form no cycle."""
    assert not _offending("training", lambda name: not name.startswith(("nothotdog.export",
                                                                        "nothotdog.bot")))


def test_contract_stays_light():
    """contract is what the bot and every room share: numpy, Pillow and the two runtimes only
    (no TensorFlow, onnx or matplotlib), and none of the rooms above it."""
    third_party = ("numpy", "PIL", "onnxruntime", "openvino", "pillow_heif")

    def allowed(name: str) -> bool:
        root = name.partition(".")[0]
        return (root in sys.stdlib_module_names or root in third_party
                or name.startswith("nothotdog.contract") or name == "__future__")  # fmt: skip

    assert not _offending("contract", allowed)


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(("nothotdog", *(parts[:-1] if parts[-1] == "__init__" else parts)))


def _product_graph() -> dict[str, set[str]]:
    """Each product module and the product modules it imports, at the top or in a function
    (``from nothotdog.bot import replies`` imports the module ``nothotdog.bot.replies``)."""
    files = {_module_name(p): p for folder in PRODUCT for p in (REPO / folder).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        edges = graph.setdefault(module, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            else:
                continue
            edges.update(name for name in names if name in files and name != module)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycle_among_product_modules():
    assert _cycles(_product_graph()) == []


def test_the_cycle_check_sees_imports_inside_functions():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert "nothotdog.training.model" in _product_graph()["nothotdog.training.evaluate"]


def test_product_files_and_classes_are_small():
    """A file a newcomer can read in one go: at most 400 lines, no class over 200."""
    found = []
    for folder in PRODUCT:
        for path in sorted((REPO / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            name = path.relative_to(REPO)
            if text.count("\n") > MAX_FILE_LINES:
                found.append(f"{name}: {text.count(chr(10))} lines")
            for node in ast.walk(ast.parse(text)):
                if isinstance(node, ast.ClassDef):
                    lines = (node.end_lineno or node.lineno) - node.lineno + 1
                    if lines > MAX_CLASS_LINES:
                        found.append(f"{name}: class {node.name}, {lines} lines")
    assert found == []


def test_the_classifier_imports_no_telegram():
    """The classifier is the setup/predict surface of the command line, the benchmarks and
    evaluation: importing it loads neither python-telegram-bot nor the bot's settings."""
    script = (
        "import sys, nothotdog.bot.classifier\n"
        "print(sorted(m for m in sys.modules if m.partition('.')[0] == 'telegram'"
        " or m in ('nothotdog.bot.settings', 'nothotdog.bot.retry')))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=REPO, check=True)  # fmt: skip
    assert done.stdout.strip() == "[]"
