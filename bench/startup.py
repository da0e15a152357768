"""``python -m bench.startup``: time from starting ``python -m nothotdog.bot`` to its first answer.

A photo is already waiting on the fake Bot API server (127.0.0.1) when the process starts, as
after a restart with users waiting. Marks, on one clock from just before the process is
spawned: the bot's getMe (Python and libraries imported, settings read, model loaded and
checked: the bot calls getMe only after loading the model), its first getUpdates (command menu
set, polling), and the reply to the waiting photo (download, decode, first onnxruntime call,
sendMessage). Several cold starts, one after another; the median is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from bench.botrun import BenchTelegram, is_verdict, start_bot
from bench.common import Stopwatch, median, table, write_result

RUNS = 3
FIRST_REPLY_TIMEOUT_S = 90.0


async def one_start(model: Path, photo: bytes) -> dict[str, Any]:
    async with BenchTelegram() as api:
        api.set_photo(photo)
        sent_at, future = api.send_photo(4242)  # waiting before the process exists
        bot = start_bot(api, model, module="nothotdog.bot")
        spawn = bot.started_at  # time.monotonic(); fakebot's Call.at uses the same clock
        offset = time.perf_counter() - time.monotonic()  # replies are stamped by perf_counter
        try:
            replied_at, text = await asyncio.wait_for(future, FIRST_REPLY_TIMEOUT_S)
        except TimeoutError:
            replied_at, text = None, None
        bot.sample()
        exit_code = await bot.stop()
        get_me = api.calls_to("getMe")
        polls = api.calls_to("getUpdates")
        return {
            "getMe_s": round(get_me[0].at - spawn, 3) if get_me else None,
            "first_getUpdates_s": round(polls[0].at - spawn, 3) if polls else None,
            "first_reply_s": round(replied_at - offset - spawn, 3) if replied_at else None,
            "reply": text,
            "verdict": bool(text and is_verdict(text)),
            "peak_rss_mb": round(bot.peak_rss_mb, 1),
            "tensorflow_loaded": bot.tensorflow_loaded,
            "exit_code": exit_code,
            "photo_waited_s": round(time.perf_counter() - sent_at, 1),
        }


async def run(model: Path, runs: int) -> list[dict[str, Any]]:
    from bench.photos import telegram_photo

    photo = telegram_photo(seed=5)[1]
    results = []
    for i in range(runs):
        result = await one_start(model, photo)
        print(f"[startup] run {i + 1}: first reply after {result['first_reply_s']} s", flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.startup",
                                     description="process start to first answered photo")
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--model", type=Path, help="default: shipped model, else bench int8")
    args = parser.parse_args(argv)
    clock = Stopwatch()
    from bench.models import bot_model

    model, described = (args.model, str(args.model)) if args.model else bot_model()
    print(f"[startup] model: {described}", flush=True)
    results = asyncio.run(run(model, args.runs))
    marks = [("process start -> getMe (imports + model loaded)", "getMe_s"),
             ("process start -> polling (first getUpdates)", "first_getUpdates_s"),
             ("process start -> first photo answered", "first_reply_s")]
    rows = []
    for label, key in marks:
        values = [r[key] for r in results if r[key] is not None]
        rows.append((label, median(values), min(values, default=float("nan")),
                     max(values, default=float("nan"))))
    print()
    print(f"Model: {described}")
    print(table(["python -m nothotdog.bot, cold start", "median s", "min s", "max s"], rows,
                title=f"Start-up, {len(results)} runs"))
    write_result("startup", {"model": described, "runs": results,
                             "median_first_reply_s": rows[-1][1]}, clock)
    ok = all(r["verdict"] and r["exit_code"] == 0 for r in results)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
