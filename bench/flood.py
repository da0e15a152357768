"""``python -m bench.flood``: image files from many chats at once: the bot's memory, answers.

A flood of large files from many chats, measured: the stock ``python -m nothotdog.bot`` (default
settings, the shipped model, AIORateLimiter as shipped) against the fake Bot API server
(tests/fakebot.py) on 127.0.0.1.
Each row starts a fresh bot, warms it up with four photos, then pushes N image files from N
private chats in one go and waits for every answer. Reported per row: the bot's peak RSS
(VmHWM, whole life: start-up, warm-up and flood) and RSS before the flood, the answers by kind
(verdict, verdict from Telegram's preview, busy, too large, anything else), files answered
twice or not at all (must be 0), and the time from the first file pushed to the last answer.

Files: PNGs of RGB noise (they compress to their full size, and a PNG is decoded in full, no
JPEG draft scale): 1792 x 1792 is 9.6 MB, 2580 x 2580 is 20 MB. The 20 MB ones come with the
320 px preview Telegram makes of image files, and once without it.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.botrun import BenchTelegram, is_verdict, start_bot, wait_ready
from bench.common import Stopwatch, status_mb, table, write_result

ANSWER_TIMEOUT_S = 240.0
SETTLE_S = 1.5  # after the last answer: time for a second answer to show up, if any


@dataclass(frozen=True)
class Row:
    name: str
    files: int
    side: int  # of the noise PNG
    preview: bool


ROWS = (
    Row("40 x 10 MB", 40, 1792, preview=False),
    Row("64 x 20 MB, with preview", 64, 2580, preview=True),
    Row("64 x 20 MB, no preview", 64, 2580, preview=False),
)


@functools.cache
def noise_png(side: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    noise = np.random.default_rng(side).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def kind(text: str) -> str:
    from nothotdog.bot import replies

    if is_verdict(text):
        return "preview" if "preview" in text else "verdict"
    if text == replies.busy():
        return "busy"
    if text.startswith("📦"):
        return "too large"
    return "other"


async def flood(model: Path, row: Row, photo: bytes) -> dict[str, Any]:
    data = noise_png(row.side)
    async with BenchTelegram() as api:
        api.set_photo(photo)
        bot = start_bot(api, model, module="nothotdog.bot")
        try:
            await wait_ready(api, bot)
            warm = [api.send_photo(999)[1] for _ in range(4)]
            await asyncio.wait_for(asyncio.gather(*warm), 60)
            await asyncio.sleep(0.3)
            bot.sample()
            before_mb = status_mb("VmRSS", bot.proc.pid)
            warm_peak_mb = bot.peak_rss_mb
            sent_before = len(api.sent)
            started = time.perf_counter()
            messages = [
                api.push_document(data, api.private_chat(30_000 + i), file_name=f"scan{i}.png",
                                  thumbnail=photo if row.preview else None)
                for i in range(row.files)
            ]
            await api.wait_until(lambda: len(api.sent) >= sent_before + row.files,
                                 timeout=ANSWER_TIMEOUT_S)
            answered_s = time.perf_counter() - started
        except AssertionError:  # not all answered in time: counted below as lost
            answered_s = float("nan")
        finally:
            await asyncio.sleep(SETTLE_S)
            exit_code = await bot.stop()
    answers: collections.Counter[str] = collections.Counter()
    for message in messages:
        texts = [m["text"] for m in api.replies_now(message)]
        answers["lost" if not texts else "twice" if len(texts) > 1 else kind(texts[0])] += 1
    return {
        "row": row.name,
        "files": row.files,
        "file_mb": round(len(data) / 1e6, 1),
        "preview": row.preview,
        "peak_rss_mb": round(bot.peak_rss_mb, 1),
        "rss_before_flood_mb": round(before_mb, 1),
        "peak_rss_before_flood_mb": round(warm_peak_mb, 1),
        "answers": dict(answers),
        "all_answered_once": answers["lost"] == 0 and answers["twice"] == 0,
        "answered_s": round(answered_s, 2),
        "exit_code": exit_code,
        **bot.log_counts(),
    }


def print_table(results: list[dict[str, Any]]) -> None:
    rows = [(r["row"], r["peak_rss_mb"], r["rss_before_flood_mb"],
             ", ".join(f"{k} {v}" for k, v in sorted(r["answers"].items())),
             "yes" if r["all_answered_once"] else "NO", r["answered_s"], r["exit_code"])
            for r in results]
    print(table(["documents flood", "peak RSS MB", "RSS before MB", "answers",
                 "each answered once", "all answered s", "exit"], rows,
                title="Image files from as many chats at once, stock bot, default settings"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flood",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, help="default: shipped model, else bench int8")
    args = parser.parse_args(argv)
    clock = Stopwatch()
    from bench.models import bot_model
    from bench.photos import telegram_photo

    model, described = (args.model, str(args.model)) if args.model else bot_model()
    print(f"[flood] model: {described}", flush=True)
    photo = telegram_photo(seed=5)[1]  # 320 x 240: the warm-up photo and the preview

    async def run_all() -> list[dict[str, Any]]:
        results = []
        for row in ROWS:
            results.append(await flood(model, row, photo))
            print(f"[flood] {row.name}: peak {results[-1]['peak_rss_mb']:.0f} MB, "
                  f"{results[-1]['answers']}", flush=True)
        return results

    results = asyncio.run(run_all())
    print()
    print(f"Model: {described}")
    print_table(results)
    write_result("flood", {"model": described, "rows": results}, clock)
    ok = all(r["all_answered_once"] and r["exit_code"] == 0 for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
