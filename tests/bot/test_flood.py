"""A hostile flood: 40 image files of ~10 MB from 40 chats at once, to the stock bot process.

The bot runs as ``python -m nothotdog.bot`` with its default settings (the tiny model aside), so its
peak memory is its own: the kernel's peak RSS (VmHWM) of that process, reset once it is warm.
Every file must get exactly one answer, a verdict (the files wait their turn for memory rather
than being refused), and memory must stay within what the byte budget guarantees. The exact
figures, with the shipped model, are bench.flood's.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import io
import signal
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nothotdog.bot import replies
from nothotdog.bot.settings import Settings
from tests.bot.harness import bot_process, bot_process_env
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, encode, solid

CHATS = 40
SIDE = 1_792  # RGB noise: a 9.6 MB PNG (under MAX_FILE_MB's 10), 12.8 MB once decoded
# Default budget (48 MB) plus the HTTP buffers, the decoded images, and the allocator's
# slack. Holding every file at once, three copies each, would be over 1 GB.
GROWTH_BOUND_MB = 160
PEAK_BOUND_MB = 300  # the whole process, model and libraries included


@functools.cache
def ten_mb_png() -> bytes:
    noise = np.random.default_rng(40).integers(0, 256, (SIDE, SIDE, 3), dtype=np.uint8)
    return encode(Image.fromarray(noise), "PNG", compress_level=1)


def status_mb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def reset_peak(pid: int) -> None:
    """VmHWM := VmRSS for ``pid`` (Linux >= 4.0; writable by the process's owner)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        pytest.skip("needs /proc/PID/clear_refs to measure the bot's peak memory")


async def test_flood_of_forty_10_mb_files_gets_one_answer_each_within_the_budget(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path
) -> None:
    data = ten_mb_png()
    assert 9_000_000 < len(data) < 10 * 1024 * 1024  # "about 10 MB", under MAX_FILE_MB
    with (tmp_path / "bot.log").open("wb") as log:
        proc = await bot_process(bot_process_env(telegram, tiny_model_path), tmp_path, log)
    try:
        await telegram.wait_until(lambda: bool(telegram.calls_to("getUpdates")), timeout=60)
        warm = telegram.push_photo(solid(GREEN))
        assert await telegram.reply_text(warm, timeout=30) == GREEN_TEXT
        await telegram.quiet(0.3)
        before = status_mb(proc.pid, "VmRSS")
        reset_peak(proc.pid)
        started = time.monotonic()
        chats = [FakeTelegram.private_chat(20_000 + i) for i in range(CHATS)]
        sent = [telegram.push_document(data, chat, file_name=f"scan{i}.png")
                for i, chat in enumerate(chats)]
        await telegram.wait_until(lambda: len(telegram.sent) >= 1 + CHATS, timeout=120)
        answered_s = time.monotonic() - started
        await telegram.quiet(1.0)  # anything sent twice would arrive by now
        peak = status_mb(proc.pid, "VmHWM")
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.wait(), timeout=30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (tmp_path / "bot.log").read_text()[-3000:]

    answers = collections.Counter()
    for message in sent:
        texts = [m["text"] for m in telegram.replies_now(message)]
        assert len(texts) == 1, f"{message['chat']['id']}: {texts}"
        answers["busy" if texts[0] == replies.busy() else
                "verdict" if texts[0].startswith(("🌭", "🚫")) else texts[0]] += 1
    growth = peak - before
    default_budget = Settings().memory_budget_mb
    print(f"\n{CHATS} x {len(data) / 1e6:.1f} MB PNG from {CHATS} chats at once: {dict(answers)}, "
          f"all answered in {answered_s:.1f} s; bot RSS {before:.0f} MiB before, peak "
          f"{peak:.0f} MiB (growth {growth:.0f} MiB; budget {default_budget} MiB, bound "
          f"{GROWTH_BOUND_MB})")
    assert answers == {"verdict": CHATS}, answers
    assert growth < GROWTH_BOUND_MB and peak < PEAK_BOUND_MB


def test_the_png_is_the_heavy_kind() -> None:
    """Decoded in full (no JPEG draft scale): the flood's files cost what they weigh."""
    with Image.open(io.BytesIO(ten_mb_png())) as image:
        assert image.format == "PNG" and image.size == (SIDE, SIDE)
