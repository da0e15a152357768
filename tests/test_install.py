"""A new user's install: ``pip install .`` into a fresh venv, then the commands from another
folder, with no MODEL_PATH and no checkout on the path.

pip uses whatever index its configuration names (PyPI in CI; a local mirror or cache offline);
when it can reach none, the test is skipped and says so rather than failing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.imagefiles import RED, solid

REPO = Path(__file__).resolve().parents[1]
# What a clone has that `pip install .` reads; copied so the build never writes into the repo.
# tests/ is not among them: it is not part of the product (its fake Bot API included).
SOURCES = ["pyproject.toml", "README.md", "LICENSE", "bot", "contract", "training", "export",
           "models/nothotdog.onnx", "models/nothotdog.export.json"]  # fmt: skip
NO_INDEX = ("No matching distribution", "Could not find a version", "NewConnectionError",
            "Failed to establish", "Temporary failure in name resolution",
            "Network is unreachable")  # fmt: skip
INSTALL_TIMEOUT_S = 900


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bin/ folder of a fresh venv with ``pip install .`` (serving only) done."""
    root = tmp_path_factory.mktemp("install")
    src = root / "src"
    for name in SOURCES:
        source, target = REPO / name, src / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, target)
    venv.create(root / "venv", with_pip=True)
    bin_dir = root / "venv" / "bin"
    pip = [str(bin_dir / "python"), "-m", "pip", "install", "--disable-pip-version-check",
           "--prefer-binary", "--quiet", str(src)]  # fmt: skip
    try:
        done = subprocess.run(
            pip, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, env=_clean_env()
        )
    except subprocess.TimeoutExpired:
        pytest.skip(f"pip install took over {INSTALL_TIMEOUT_S}s (a slow or absent index)")
    if done.returncode != 0:
        output = done.stdout + done.stderr
        if any(sign in output for sign in NO_INDEX):
            pytest.skip(f"pip cannot reach a package index from here: {output[-300:]}")
        pytest.fail(f"pip install . failed:\n{output[-3000:]}")
    return bin_dir


def _clean_env() -> dict[str, str]:
    """No checkout on the path and no bot setting: only what an installed package brings."""
    drop = {"PYTHONPATH", "MODEL_PATH", "THRESHOLD", "TELEGRAM_BOT_TOKEN", "VIRTUAL_ENV"}
    return {k: v for k, v in os.environ.items() if k not in drop}


def _run(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(bin_dir / args[0]), *args[1:]],
        cwd=cwd, capture_output=True, text=True, timeout=120, env=_clean_env(),
    )  # fmt: skip


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A folder far from the checkout, with no .env and one photo."""
    (tmp_path / "some.jpg").write_bytes(solid(RED, size=(320, 240)))
    return tmp_path


def test_classify_runs_the_shipped_model_from_any_folder(installed: Path, elsewhere: Path):
    done = _run(installed, "nothotdog", "classify", "some.jpg", cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    header, line = done.stdout.splitlines()
    assert header == "path\tlabel\tp_hotdog\tverdict"
    assert line.startswith("some.jpg\t") and ("Hotdog!" in line or "Not hotdog" in line)
    site = next((installed.parent / "lib").glob("python*/site-packages"))
    assert (site / "nothotdog" / "bot" / "shipped" / "nothotdog.onnx").is_file()  # package data
    assert (site / "nothotdog" / "bot" / "locales" / "de" / "LC_MESSAGES" / "messages.po").is_file()


def test_one_namespace_in_site_packages(installed: Path):
    """Everything installs under nothotdog/: no top-level bot, contract, training or export to
    collide with another project's modules. The fake Bot API (tests/fakebot.py) is a test tool
    and is not installed at all."""
    site = next((installed.parent / "lib").glob("python*/site-packages"))
    record = next(site.glob("nothotdog-*.dist-info")) / "RECORD"
    files = [line.split(",")[0] for line in record.read_text().splitlines() if line]
    tops = {name.split("/")[0] for name in files if not name.startswith("../")}  # not bin/
    assert {top for top in tops if not top.endswith(".dist-info")} == {"nothotdog"}
    assert not (site / "nothotdog" / "__init__.py").exists()  # an implicit namespace package
    assert not [name for name in files if "fakebot" in name]
    packages = {p.name for p in (site / "nothotdog").iterdir()} - {"__pycache__"}
    assert packages == {"bot", "contract", "export", "training"}


def test_help_and_version_need_no_token(installed: Path, elsewhere: Path):
    help_ = _run(installed, "nothotdog-bot", "--help", cwd=elsewhere)
    assert help_.returncode == 0, help_.stderr
    assert "TELEGRAM_BOT_TOKEN" in help_.stdout
    version = _run(installed, "nothotdog", "--version", cwd=elsewhere)
    assert version.returncode == 0 and version.stdout.startswith("nothotdog 0.")


@pytest.mark.parametrize(
    "command",
    [["nothotdog-train", "--data", "photos", "--out", "run"],
     ["nothotdog-eval", "model.onnx", "photos"],
     ["nothotdog-export", "run", "--out", "model.onnx"]],
    ids=lambda command: command[0],
)  # fmt: skip
def test_training_commands_name_the_extra_in_a_serving_install(
    installed: Path, elsewhere: Path, command: list[str]
):
    assert _run(installed, command[0], "--version", cwd=elsewhere).returncode == 0
    done = _run(installed, *command, cwd=elsewhere)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [done.stderr.strip()]  # one line, no traceback
    assert "pip install 'nothotdog[train]'" in done.stderr


def test_bot_without_a_token_says_so_in_one_line(installed: Path, elsewhere: Path):
    done = _run(installed, "nothotdog-bot", cwd=elsewhere)
    assert done.returncode == 2
    assert done.stderr.startswith("nothotdog-bot: TELEGRAM_BOT_TOKEN is not set")
    assert "Traceback" not in done.stderr


def test_the_checkout_is_not_what_ran(installed: Path):
    """Guards the test itself: the venv's python imports the installed bot, not this repo."""
    where = subprocess.run(
        [str(installed / "python"), "-c", "import nothotdog.bot as b; print(b.__file__)"],
        cwd=installed, capture_output=True, text=True, env=_clean_env(), check=True,
    ).stdout  # fmt: skip
    assert "site-packages" in where and str(REPO) not in where
    assert sys.prefix != str(installed.parent)
