"""The training-side launchers: --version anywhere, one line when the train extra is missing."""

from __future__ import annotations

import sys
import types

import pytest

from nothotdog.training.launch import run_with_extra


def _module(monkeypatch: pytest.MonkeyPatch, name: str, main) -> None:
    module = types.ModuleType(name)
    module.main = main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, name, module)


def test_a_missing_train_tool_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    def main(argv: list[str]) -> int:
        raise ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow.keras")

    _module(monkeypatch, "fake_training_main", main)
    assert run_with_extra("nothotdog-train", "fake_training_main:main", ["--data", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "no module named 'tensorflow'" in err and "pip install 'nothotdog[train]'" in err


def test_our_own_missing_module_keeps_its_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    def main(argv: list[str]) -> int:
        gone = "nothotdog.training.gone"
        raise ModuleNotFoundError(f"No module named {gone!r}", name=gone)

    _module(monkeypatch, "fake_training_main", main)
    with pytest.raises(ModuleNotFoundError):
        run_with_extra("nothotdog-train", "fake_training_main:main", [])


def test_version_answers_without_importing_the_command(capsys: pytest.CaptureFixture) -> None:
    assert run_with_extra("nothotdog-export", "not_a_module_at_all:main", ["--version"]) == 0
    assert capsys.readouterr().out.startswith("nothotdog-export ")


def test_arguments_reach_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []
    _module(monkeypatch, "fake_eval_main", lambda argv: seen.append(argv) or 0)
    assert run_with_extra("nothotdog-eval", "fake_eval_main:main", ["model.onnx", "val"]) == 0
    assert seen == [["model.onnx", "val"]]
