"""``python -m bench.load``: the real bot process under load, one inference thread vs two.

The bot runs as a subprocess (``python -m bench.botproc``: ``python -m nothotdog.bot`` with
python-telegram-bot's 30 sends/s cap lifted, see that module) against the fake Bot API server
(tests/fakebot.py) on 127.0.0.1, with the int8 model (the shipped one if present, else the one
bench.inference exported). Every photo is the 320x240 JPEG of a generated 1280x960 photo,
offered in Telegram's four sizes, so the bot picks, downloads and decodes what it would in
production.

Loads: N chats (1, 10, 50) each sending its next photo as soon as the previous one is
answered (closed loop: as fast as answered), and photos at a fixed offered rate spread over 10
chats (open loop: latency at a given traffic). Three bot processes run side by side, one per
mode: the default (WORKER_THREADS=1, RUNTIME=auto: OpenVINO), two inference calls at once
(WORKER_THREADS=2, twice the activation memory), and the default on onnxruntime
(RUNTIME=onnxruntime); each photo gets its own call. Each level runs in short slices, every
mode in turn and then in the reverse order, so drifts of a shared machine hit every mode
alike. Last, a
stock ``python -m nothotdog.bot`` (cap on) runs the 50-chat level once, to show what the cap does.

Per mode and level: photos sent and answered, replies lost (no answer within 20 s: must be
0), error replies (anything but a verdict, e.g. "busy"), photos/s, photo-to-reply latency
p50/p95/p99 (from pushing the update to the bot's sendMessage arriving, one clock; the first
half second of each slice is warm-up and left out), and CPU milliseconds per photo spent by the
bot and by this process (the fake server and the load generator share the machine). Per
process: peak RSS (VmHWM) and whether any TensorFlow library is mapped. Every slice is
bounded in time and count; the bots are stopped with SIGINT and must exit 0.

Each row also gives photos/s as a percentage of the model's own rate (bench.ownrate): the
same model file, batch 1, timed alone in this process before the first level and after each
level while the bots sit idle; a level's reference is the two checkpoints around it. 100%
would mean the bot adds nothing to the model's own time per photo. That rate is the default
runtime's, so the onnxruntime row's percentage compares it with OpenVINO's model rate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.botrun import BenchTelegram, BotProcess, is_verdict, start_bot, wait_ready
from bench.common import Stopwatch, describe_cpu, percentile, table, write_result
from bench.ownrate import OwnRate, percent_of

CLOSED_CHATS = (1, 10, 50)
OPEN_RATE = 5.0  # photos per second offered in the open-loop level
OPEN_CHATS = 10
SLICE_SECONDS = 4.0  # one mode's turn at one level; each mode gets SLICES turns per level
SLICES = 2
WARMUP_SECONDS = 0.5  # of each slice, left out of latency and throughput
REPLY_TIMEOUT_S = 20.0  # no reply by then: lost
MAX_PHOTOS_PER_SLICE = 2000
ONE, TWO, ORT = "1 worker (default)", "2 workers", "1 worker, onnxruntime"
MODES: dict[str, dict[str, str]] = {ONE: {"WORKER_THREADS": "1"}, TWO: {"WORKER_THREADS": "2"},
                                    ORT: {"WORKER_THREADS": "1", "RUNTIME": "onnxruntime"}}
STOCK = "stock python -m nothotdog.bot"
ONNX_THREADS = 0  # every bot runs with ONNX_THREADS unset (bench.botrun): all cores


@dataclass(frozen=True)
class Level:
    kind: str  # "closed" or "open"
    chats: int
    rate: float | None = None

    @property
    def name(self) -> str:
        if self.kind == "closed":
            return f"closed, {self.chats} chat{'s' if self.chats > 1 else ''}"
        return f"open, {self.rate:g}/s over {self.chats} chats"


@dataclass
class Sample:
    sent_at: float
    replied_at: float | None = None
    text: str | None = None


@dataclass
class Slice:
    """One mode's turn at one level: the photos, and the CPU both sides spent on them."""

    start: float
    seconds: float
    samples: list[Sample]
    bot_cpu_s: float
    bench_cpu_s: float


@dataclass
class Result:
    mode: str
    level: Level
    slices: list[Slice] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        samples = [s for sl in self.slices for s in sl.samples]
        answered = [s for s in samples if s.replied_at is not None]
        latencies: list[float] = []
        busy = 0.0  # first photo sent to last reply, per slice: the bot never ran dry between
        for sl in self.slices:
            replied = [s.replied_at for s in sl.samples if s.replied_at is not None]
            busy += max(replied, default=sl.start) - min(s.sent_at for s in sl.samples)
            lo, hi = sl.start + WARMUP_SECONDS, sl.start + sl.seconds
            latencies += [(s.replied_at - s.sent_at) * 1000 for s in sl.samples
                          if s.replied_at is not None and lo <= s.sent_at <= hi]
        n = max(len(answered), 1)
        return {
            "mode": self.mode,
            "level": self.level.name,
            "kind": self.level.kind,
            "chats": self.level.chats,
            "offered_rate": self.level.rate,
            "slices": len(self.slices),
            "sent": len(samples),
            "answered": len(answered),
            "lost": len(samples) - len(answered),
            "error_replies": sum(not is_verdict(s.text or "") for s in answered),
            "photos_per_s": round(len(answered) / busy, 2) if busy else 0.0,
            "latency_ms": {
                "p50": round(percentile(latencies, 50), 1),
                "p95": round(percentile(latencies, 95), 1),
                "p99": round(percentile(latencies, 99), 1),
                "max": round(max(latencies, default=float("nan")), 1),
                "samples": len(latencies),
            },
            "bot_cpu_ms_per_photo": round(sum(sl.bot_cpu_s for sl in self.slices) * 1000 / n, 1),
            "bench_cpu_ms_per_photo": round(
                sum(sl.bench_cpu_s for sl in self.slices) * 1000 / n, 1),
        }


async def closed_loop(api: BenchTelegram, chats: int, seconds: float) -> list[Sample]:
    """Each chat sends its next photo the moment the previous one is answered."""
    samples: list[Sample] = []
    stop_at = time.perf_counter() + seconds

    async def chat(chat_id: int) -> None:
        while time.perf_counter() < stop_at and len(samples) < MAX_PHOTOS_PER_SLICE:
            sent_at, future = api.send_photo(chat_id)
            sample = Sample(sent_at)
            samples.append(sample)
            try:
                sample.replied_at, sample.text = await asyncio.wait_for(future, REPLY_TIMEOUT_S)
            except TimeoutError:
                return  # lost: this chat stops, the others go on

    await asyncio.gather(*(chat(1000 + i) for i in range(chats)))
    return samples


async def open_loop(api: BenchTelegram, chats: int, rate: float, seconds: float) -> list[Sample]:
    """Photos at ``rate`` per second whatever the bot does, round-robin over ``chats``."""
    samples: list[Sample] = []
    waits: list[asyncio.Task[None]] = []
    start = time.perf_counter()

    async def wait(sample: Sample, future: asyncio.Future[tuple[float, str]]) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            sample.replied_at, sample.text = await asyncio.wait_for(future, REPLY_TIMEOUT_S)

    for i in range(min(int(rate * seconds), MAX_PHOTOS_PER_SLICE)):
        delay = start + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent_at, future = api.send_photo(2000 + i % chats)
        samples.append(Sample(sent_at))
        waits.append(asyncio.create_task(wait(samples[-1], future)))
    await asyncio.gather(*waits)
    return samples


def own_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


async def run_slice(api: BenchTelegram, bot: BotProcess, level: Level, seconds: float) -> Slice:
    """One turn, drained: it returns when every photo has its answer or timed out."""
    bot_cpu, bench_cpu, start = bot.cpu_seconds(), own_cpu_s(), time.perf_counter()
    if level.kind == "closed":
        samples = await closed_loop(api, level.chats, seconds)
    else:
        assert level.rate is not None
        samples = await open_loop(api, level.chats, level.rate, seconds)
    bot.sample()
    return Slice(start, seconds, samples, bot.cpu_seconds() - bot_cpu, own_cpu_s() - bench_cpu)


async def warm_up(api: BenchTelegram) -> None:
    """A few photos first: onnxruntime's first calls allocate, and that is start-up, not load."""
    futures = [api.send_photo(999)[1] for _ in range(4)]
    await asyncio.wait_for(asyncio.gather(*futures), 60)


@contextlib.asynccontextmanager
async def bot_under_test(model: Path, module: str, photo: bytes, **settings: str
                         ) -> AsyncIterator[tuple[BenchTelegram, BotProcess]]:
    async with BenchTelegram() as api:
        api.set_photo(photo)
        bot = start_bot(api, model, module=module, **settings)
        try:
            await wait_ready(api, bot)
            await warm_up(api)
            yield api, bot
        finally:
            await bot.stop()


def log_result(r: dict[str, Any]) -> None:
    print(f"[load] {r['mode']:<22} {r['level']:<24} {r['photos_per_s']:6.1f} photos/s "
          f"({r['pct_of_model_rate']:3.0f}% of the model's)  p95 {r['latency_ms']['p95']:6.0f} "
          f"ms  lost {r['lost']}  errors {r['error_replies']}", flush=True)


def with_model_rate(summary: dict[str, Any], own: OwnRate, first: int, last: int
                    ) -> dict[str, Any]:
    """The row plus the model's own rate from checkpoints ``first``..``last`` around it."""
    ms = own.ms_between(first, last)
    return {**summary, "model_ms_per_image": round(ms, 2),
            "model_photos_per_s": round(1000 / ms, 2),
            "pct_of_model_rate": round(percent_of(summary["photos_per_s"], ms), 1)}


async def run(model: Path, levels: list[Level], seconds: float, stock: bool, own: OwnRate
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    from bench.photos import telegram_photo

    photo = telegram_photo(seed=11)[1]
    results: list[dict[str, Any]] = []

    async def checkpoint() -> None:  # in a thread: the fake server keeps serving the idle bots
        await asyncio.to_thread(own.checkpoint)

    async with contextlib.AsyncExitStack() as stack:
        entered = await asyncio.gather(*(
            stack.enter_async_context(bot_under_test(model, "bench.botproc", photo, **env))
            for env in MODES.values()))
        bots = dict(zip(MODES, entered, strict=True))
        print(f"[load] {len(bots)} bot processes ready", flush=True)
        await checkpoint()
        for i, level in enumerate(levels):
            names = list(MODES)
            names = names[i % len(names):] + names[: i % len(names)]
            order = (names + names[::-1]) * (SLICES // 2) + names[: SLICES % 2]
            per_mode = {name: Result(name, level) for name in names}
            for name in order:
                api, bot = bots[name]
                per_mode[name].slices.append(await run_slice(api, bot, level, seconds))
            await checkpoint()
            for name in MODES:
                results.append(with_model_rate(per_mode[name].summary(), own, i, i + 1))
                log_result(results[-1])
    processes = [process_record(name, bot) for name, (_, bot) in bots.items()]
    if stock:
        level = Level("closed", max(CLOSED_CHATS))
        async with bot_under_test(model, "nothotdog.bot", photo, **MODES[ONE]) as (api, bot):
            result = Result(STOCK, level, [await run_slice(api, bot, level, seconds)])
            await checkpoint()
        last = len(own.checkpoints) - 1
        summary = with_model_rate(result.summary(), own, last - 1, last)
        summary["note"] = "AIORateLimiter as shipped (30 sendMessage/s overall); 1 worker"
        results.append(summary)
        log_result(summary)
        processes.append(process_record(f"{STOCK} (1 worker)", bot))
    return results, processes


def process_record(mode: str, bot: BotProcess) -> dict[str, Any]:
    return {
        "process": mode,
        "command": f"python -m {bot.module}",
        "settings": bot.env,
        "peak_rss_mb": round(bot.peak_rss_mb, 1),
        "tensorflow_loaded": bot.tensorflow_loaded,
        "exit_code": bot.exit_code,
        **bot.log_counts(),
    }


def print_tables(results: list[dict[str, Any]], processes: list[dict[str, Any]]) -> None:
    rows = [(r["mode"], r["level"], r["sent"], r["lost"], r["error_replies"], r["photos_per_s"],
             f"{r['pct_of_model_rate']:.0f}%", r["latency_ms"]["p50"], r["latency_ms"]["p95"],
             r["latency_ms"]["p99"], r["bot_cpu_ms_per_photo"], r["bench_cpu_ms_per_photo"])
            for r in results]
    print(table(["bot", "load", "sent", "lost", "errors", "photos/s", "% of model", "p50 ms",
                 "p95 ms", "p99 ms", "bot CPU ms/photo", "bench CPU ms/photo"], rows,
                title="Bot under load (photo -> reply; every photo answered or counted lost; "
                      "% of model = photos/s over the model's own batch-1 rate around the level)"))
    print()
    prow = [(p["process"], p["command"], p["peak_rss_mb"],
             "yes" if p["tensorflow_loaded"] else "no", p["exit_code"], p["error_lines"],
             p["warning_lines"]) for p in processes]
    print(table(["bot process", "command", "peak RSS MB", "TensorFlow", "exit", "log errors",
                 "log warnings"], prow, title="Bot processes"))


def parse_levels(text: str, open_rate: float) -> list[Level]:
    levels = [Level("closed", int(n)) for n in text.split(",") if n]
    if open_rate > 0:
        levels.append(Level("open", OPEN_CHATS, open_rate))
    return levels


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.load",
                                     description="the real bot under load, 1 vs 2 workers")
    parser.add_argument("--chats", default=",".join(map(str, CLOSED_CHATS)),
                        help="closed-loop levels, comma-separated (default %(default)s)")
    parser.add_argument("--rate", type=float, default=OPEN_RATE,
                        help=f"open-loop photos/s over {OPEN_CHATS} chats; 0 to skip "
                             "(default %(default)s)")
    parser.add_argument("--seconds", type=float, default=SLICE_SECONDS,
                        help=f"per slice; each mode gets {SLICES} per level (default %(default)s)")
    parser.add_argument("--no-stock", action="store_true",
                        help="skip the stock python -m nothotdog.bot run with the 30/s cap")
    parser.add_argument("--model", type=Path, help="default: shipped model, else bench int8")
    args = parser.parse_args(argv)
    clock = Stopwatch()
    from bench.models import bot_model

    model, described = (args.model, str(args.model)) if args.model else bot_model()
    print(f"[load] model: {described}", flush=True)
    levels = parse_levels(args.chats, args.rate)
    own = OwnRate.load(model, ONNX_THREADS)
    results, processes = asyncio.run(run(model, levels, args.seconds, not args.no_stock, own))
    rate = own.summary()
    print()
    print(f"CPU: {describe_cpu()}")
    print(f"Model: {described}")
    print(f"Model alone (batch 1, this process, {len(own.checkpoints)} checkpoints): "
          f"{rate['median_ms_per_image']:.1f} ms per photo, {rate['photos_per_s']:.1f} photos/s")
    print_tables(results, processes)
    write_result("load", {
        "model": described,
        "slice_seconds": args.seconds,
        "slices_per_mode": SLICES,
        "warmup_seconds_per_slice": WARMUP_SECONDS,
        "reply_timeout_s": REPLY_TIMEOUT_S,
        "modes": MODES,
        "model_rate": {"batch": 1, "onnx_threads": ONNX_THREADS, **rate},
        "levels": results,
        "processes": processes,
    }, clock)
    ok = all(r["lost"] == 0 for r in results) and all(p["exit_code"] == 0 for p in processes)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
