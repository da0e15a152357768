"""``python -m bench.burst [--photos DIR]``: a whole set of photos sent at once, each runtime.

What a popular bot meets when it is posted somewhere: many photos from many chats in one go.
The stock ``python -m nothotdog.bot`` (default settings, the shipped model, python-telegram-
bot's AIORateLimiter as shipped: about 30 sends a second, Telegram's limit for one bot) runs
against the fake Bot API server (tests/fakebot.py) on 127.0.0.1, once per runtime
(``RUNTIME=openvino``, ``RUNTIME=onnxruntime``), in the order A B B A (``--rounds 2``), so
a drift of the shared machine hits both alike. Each run pushes every photo from its own
private chat at once and waits for every answer.

Per runtime: verdicts (and, with ``--photos``, how many were right by the folder they came
from), "busy" answers, other answers, photos never answered or answered twice (both must be
0), and verdicts per second from the first photo pushed to the last answer. ``--photos``
takes a labelled folder (``hot_dog/``, ``not_hot_dog/``, e.g. a test split); without it, 300
generated 320 px photos are sent.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import time
from pathlib import Path
from typing import Any

from bench.botrun import BenchTelegram, is_verdict, start_bot, wait_ready
from bench.common import Stopwatch, describe_cpu, table, write_result

RUNTIMES = ("openvino", "onnxruntime")
GENERATED = 300
ANSWER_TIMEOUT_S = 300.0
SETTLE_S = 1.5  # after the last answer: time for a second answer to show up, if any
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


def labelled_photos(folder: Path | None, limit: int | None) -> list[tuple[bytes, str | None]]:
    """(bytes, label or None): the folder's photos, or generated ones."""
    if folder is None:
        from bench.photos import telegram_photo

        return [(telegram_photo(seed=i)[1], None) for i in range(limit or GENERATED)]
    files = sorted(p for p in folder.glob("*/*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"no photos in {folder}/<label>/")
    return [(p.read_bytes(), p.parent.name) for p in files[:limit]]


async def burst(model: Path, runtime: str, photos: list[tuple[bytes, str | None]],
                warm: bytes) -> dict[str, Any]:  # fmt: skip
    from nothotdog.bot import replies

    async with BenchTelegram() as api:
        api.set_photo(warm)
        bot = start_bot(api, model, module="nothotdog.bot", RUNTIME=runtime)
        try:
            await wait_ready(api, bot)
            await asyncio.wait_for(asyncio.gather(*[api.send_photo(999)[1] for _ in range(4)]),
                                   60)  # fmt: skip
            await asyncio.sleep(0.3)
            sent_before = len(api.sent)
            started = time.monotonic()  # the fake server stamps each call on this clock
            messages = [api.push_photo(data, api.private_chat(50_000 + i), width=320, height=240)
                        for i, (data, _) in enumerate(photos)]  # fmt: skip
            with contextlib.suppress(AssertionError):  # counted below as never answered
                await api.wait_until(lambda: len(api.sent) >= sent_before + len(photos),
                                     timeout=ANSWER_TIMEOUT_S)  # fmt: skip
            seconds = max((c.at for c in api.calls_to("sendMessage")), default=started) - started
            await asyncio.sleep(SETTLE_S)
        finally:
            exit_code = await bot.stop()
        log = bot.log_tail(200)
    counts: collections.Counter[str] = collections.Counter()
    for message, (_, label) in zip(messages, photos, strict=True):
        texts = [m["text"] for m in api.replies_now(message)]
        if not texts:
            counts["never answered"] += 1
            continue
        if len(texts) > 1:
            counts["answered twice"] += 1
        text = texts[0]
        if is_verdict(text):
            counts["verdict"] += 1
            if label is not None:
                counts["right"] += (label == "hot_dog") == text.startswith("🌭")
        else:
            counts["busy" if text == replies.busy() else "other"] += 1
    return {
        "runtime": runtime,
        "photos": len(photos),
        **{k: counts[k] for k in ("verdict", "right", "busy", "other", "never answered",
                                  "answered twice")},
        "seconds": round(seconds, 2),
        "verdicts_per_s": round(counts["verdict"] / seconds, 2) if seconds > 0 else 0.0,
        "exit_code": exit_code,
        "runtime_in_log": f"on {runtime}" in log,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.burst",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--photos", type=Path, help="labelled folder: DIR/<label>/*.jpg")
    parser.add_argument("--limit", type=int, help="at most this many photos")
    parser.add_argument("--rounds", type=int, default=2, help="runs per runtime (A B B A ...)")
    parser.add_argument("--model", type=Path, help="default: shipped model, else bench int8")
    args = parser.parse_args(argv)
    clock = Stopwatch()
    from bench.models import bot_model
    from bench.photos import telegram_photo

    model, described = (args.model, str(args.model)) if args.model else bot_model()
    photos = labelled_photos(args.photos, args.limit)
    warm = telegram_photo(seed=999)[1]
    order = [rt for r in range(args.rounds) for rt in (RUNTIMES if r % 2 == 0 else RUNTIMES[::-1])]

    async def run_all() -> list[dict[str, Any]]:
        results = []
        for runtime in order:
            results.append(await burst(model, runtime, photos, warm))
            print(f"[burst] {runtime}: {results[-1]}", flush=True)
        return results

    results = asyncio.run(run_all())
    print()
    print(f"CPU: {describe_cpu()}")
    print(f"Model: {described}; photos: {args.photos or f'{len(photos)} generated'}")
    print(table(["runtime", "photos", "verdicts", "right", "busy", "other", "never answered",
                 "twice", "seconds", "verdicts/s"],
                [(r["runtime"], r["photos"], r["verdict"], r["right"] if args.photos else "-",
                  r["busy"], r["other"], r["never answered"], r["answered twice"], r["seconds"],
                  r["verdicts_per_s"]) for r in results],
                title="Every photo at once, each from its own chat, stock bot (Telegram's cap "
                      "on)"))  # fmt: skip
    write_result("burst", {"model": described, "photos_from": str(args.photos or "generated"),
                           "runs": results}, clock)  # fmt: skip
    ok = all(r["never answered"] == 0 and r["answered twice"] == 0 and r["exit_code"] == 0
             for r in results)  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
