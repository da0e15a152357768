"""``nothotdog classify``: the bot's answer for files on disk, no token needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nothotdog.bot.cli import main
from nothotdog.bot.outcomes import Photo
from nothotdog.bot.pipeline import Pipeline
from nothotdog.bot.settings import Settings
from nothotdog.contract.runtime import OnnxModel
from tests.imagefiles import GREEN, RED, encode, solid
from tests.tinymodel import redness_probability


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    (folder / "red.jpg").write_bytes(solid(RED))
    (folder / "nested" / "green.PNG").write_bytes(solid(GREEN, fmt="PNG"))
    (folder / "notes.txt").write_text("not an image, and not picked from a folder")
    return folder


@pytest.fixture(autouse=True)
def no_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for name in ("TELEGRAM_BOT_TOKEN", "MODEL_PATH", "THRESHOLD"):
        monkeypatch.delenv(name, raising=False)


def test_classify_folder_prints_label_and_p_hotdog_under_a_header(
    photos: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["classify", str(photos), "--model", str(tiny_model_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "path\tlabel\tp_hotdog\tverdict",
        f"{photos / 'nested' / 'green.PNG'}\tnot_hot_dog\t0.119\t🚫 Not hotdog (88%)",
        f"{photos / 'red.jpg'}\thot_dog\t0.969\t🌭 Hotdog! (97%)",
    ]


def test_json_output_and_unreadable_files(
    photos: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture
) -> None:
    broken = photos / "broken.jpg"
    broken.write_bytes(solid(RED)[:200])
    code = main(
        ["classify", str(photos / "red.jpg"), str(broken), str(photos / "missing.png"),
         "--json", "--model", str(tiny_model_path)]
    )
    assert code == 1  # some files could not be classified
    rows = {Path(r["path"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert rows["red.jpg"]["label"] == "hot_dog"
    assert rows["red.jpg"]["hotdog"] is True
    assert rows["red.jpg"]["probability"] == pytest.approx(redness_probability((200, 91, 88)))
    assert rows["red.jpg"]["p_hotdog"] == rows["red.jpg"]["probability"]
    assert "damaged" in rows["broken.jpg"]["error"]
    assert rows["missing.png"]["error"] == "no such file or folder"


def test_same_answer_as_the_bot_path(tiny_model: OnnxModel, tmp_path: Path) -> None:
    """The CLI's batch path and the bot's async path (one photo per call) agree to the last bit."""
    import asyncio

    from nothotdog.bot.cli import classify_files

    images = [encode(Image.new("RGB", (500, 300), (i * 20, 255 - i * 20, 90))) for i in range(6)]
    paths = []
    for i, data in enumerate(images):
        paths.append(tmp_path / f"{i}.jpg")
        paths[-1].write_bytes(data)
    cli_rows = classify_files(tiny_model, paths)

    class LocalFiles:  # a local path, as a --local Bot API server gives
        async def locate(self, file_id: str) -> tuple[str, int | None]:
            return str(tmp_path / file_id), None

    async def bot_path() -> list:
        pipeline = Pipeline(tiny_model, Settings(), LocalFiles())
        try:
            return await asyncio.gather(*(pipeline.judge(Photo(p.name)) for p in paths))
        finally:
            await pipeline.close()

    bot_verdicts = [outcome.verdict for outcome in asyncio.run(bot_path())]
    assert [(r["label"], r["probability"]) for r in cli_rows] == [
        (v.label, round(v.probability, 6)) for v in bot_verdicts
    ]


def test_missing_model_is_a_clear_error(photos: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["classify", str(photos), "--model", "gone.onnx"]) == 2
    err = capsys.readouterr().err
    assert "model file gone.onnx does not exist" in err and "make model" not in err


def test_no_model_path_uses_the_shipped_model_from_another_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    photo = tmp_path / "red.jpg"
    photo.write_bytes(solid(RED))
    (tmp_path / ".env").write_text("WEBHOOK_PORT=abc\nMAX_FILE_MB=99\n")  # the bot's, not ours
    assert main(["classify", str(photo), "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)
    assert row["label"] in ("hot_dog", "not_hot_dog") and 0.0 <= row["p_hotdog"] <= 1.0


@pytest.mark.parametrize("value", ["7", "-0.1", "nan", "high"])
def test_threshold_option_is_checked_like_the_setting(
    photos: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture, value: str
) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["classify", str(photos), "--model", str(tiny_model_path), "--threshold", value])
    assert stop.value.code == 2
    assert "--threshold" in capsys.readouterr().err


def test_threshold_setting_is_checked(
    photos: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("THRESHOLD", "7")
    assert main(["classify", str(photos)]) == 2
    assert "THRESHOLD must be between 0 and 1" in capsys.readouterr().err


def test_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.startswith("nothotdog ")


def test_why_writes_the_overlay_at_the_photos_aspect(
    tmp_path: Path, heatmap_model_path: Path, capsys: pytest.CaptureFixture
) -> None:
    photo = tmp_path / "wide.jpg"
    image = Image.new("RGB", (900, 300), GREEN)
    image.paste(RED, (600, 0, 900, 300))
    photo.write_bytes(encode(image, "JPEG", quality=90))
    out = tmp_path / "overlay.png"
    assert main(["why", str(photo), "--out", str(out), "--model", str(heatmap_model_path)]) == 0
    with Image.open(out) as written:
        assert written.format == "PNG" and written.size == (900, 300)
        grey = np.asarray(written.convert("L"), np.float32)
    assert grey[:, 650:].mean() > 1.5 * grey[:, :500].mean()  # hottest where the red is
    assert capsys.readouterr().out.startswith(f"{out}\t")


def test_why_needs_a_model_with_a_heatmap(
    tmp_path: Path, tiny_model_path: Path, capsys: pytest.CaptureFixture
) -> None:
    photo = tmp_path / "red.jpg"
    photo.write_bytes(solid(RED))
    out = tmp_path / "overlay.png"
    assert main(["why", str(photo), "--out", str(out), "--model", str(tiny_model_path)]) == 2
    assert "can't explain itself" in capsys.readouterr().err
    assert not out.exists()


def test_classify_loads_no_telegram_library(photos: Path, tiny_model_path: Path) -> None:
    """``nothotdog classify`` is offline: the classifier it runs imports no python-telegram-bot
    (nor the bot's settings' Telegram parts), checked in a fresh interpreter."""
    script = (
        "import sys\n"
        "from nothotdog.bot.cli import main\n"
        f"status = main(['classify', {str(photos)!r}, '--model', {str(tiny_model_path)!r}])\n"
        "loaded = sorted(m for m in sys.modules if m.partition('.')[0] == 'telegram')\n"
        "print('telegram modules:', loaded, file=sys.stderr)\n"
        "sys.exit(status or (3 if loaded else 0))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, cwd=photos)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "hot_dog" in done.stdout
    assert "telegram modules: []" in done.stderr
