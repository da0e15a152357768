"""A burst far beyond the queue: every photo waits its turn and gets a verdict; memory stays
bounded, since a photo waiting in line holds none."""

from __future__ import annotations

import asyncio
import collections
import time
from typing import Any

import numpy as np
from PIL import Image

from nothotdog.bot import replies
from nothotdog.bot.app import pipeline_of
from tests.bot.conftest import StartBot
from tests.bot.memory import peak_memory
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, encode

QUEUE_SIZE = 4
CHATS = 50  # half private chats, half groups
PER_CHAT = 4  # 200 photos
# Each photo is a ~1 MB JPEG: downloading the whole burst at once would hold 200 MB of files
# (twice that with the bytes copy) before decoding any. Held to QUEUE_SIZE at a time:
BURST_RSS_BOUND_MB = 64


def noisy_photo(color: tuple[int, int, int], seed: int) -> bytes:
    """A 1280x960 camera-like JPEG (~1 MB: noise defeats compression) of mean ``color``."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(color) + rng.normal(0, 30, (960, 1280, 3)), 0, 255)
    return encode(Image.fromarray(pixels.astype(np.uint8)), "JPEG", quality=95)


async def test_burst_of_200_photos_from_50_chats(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    app = await start_bot(queue_size=QUEUE_SIZE)
    photos = {RED_TEXT: noisy_photo(RED, 1), GREEN_TEXT: noisy_photo(GREEN, 2)}
    chats = [FakeTelegram.private_chat(9000 + i) if i % 2 else FakeTelegram.group_chat(-9000 - i)
             for i in range(CHATS)]
    expected: dict[tuple[int, int], str] = {}
    with peak_memory() as peak:
        started = time.monotonic()
        for n in range(PER_CHAT):
            for i, chat in enumerate(chats):
                verdict = RED_TEXT if (i + n) % 2 else GREEN_TEXT
                message = telegram.push_photo(photos[verdict], chat)
                expected[(chat["id"], message["message_id"])] = verdict
        await telegram.wait_for_messages(len(expected), timeout=40)
        all_answered_s = time.monotonic() - started
        await telegram.quiet(0.5)

    answers: dict[tuple[int, int], list[str]] = collections.defaultdict(list)
    for m in telegram.sent:
        answers[(m["chat"]["id"], m["reply_to_message_id"])].append(m["text"])
    assert set(answers) == set(expected), "a photo was lost or an unknown message answered"
    assert all(len(texts) == 1 for texts in answers.values()), "a photo was answered twice"
    outcome = collections.Counter(
        "verdict" if texts[0] == expected[key] else "busy" if texts[0] == replies.busy()
        else f"wrong: {texts[0]}"
        for key, texts in answers.items()
    )
    pipeline = pipeline_of(app)
    print(f"\nburst of {len(expected)} photos from {CHATS} chats, queue {QUEUE_SIZE}: "
          f"{outcome['verdict']} verdicts, {outcome['busy']} busy, lost 0; peak in flight "
          f"{pipeline.admission.peak_in_flight}; peak RSS growth {peak.rss_growth_mb:.1f} MB "
          f"(bound {BURST_RSS_BOUND_MB} MB); all answered in {all_answered_s:.1f} s")
    assert outcome == {"verdict": CHATS * PER_CHAT}, outcome  # every user got a verdict
    assert pipeline.admission.peak_in_flight <= QUEUE_SIZE
    assert pipeline.classified == len(telegram.calls_to("file")) == len(expected)
    assert peak.rss_growth_mb < BURST_RSS_BOUND_MB

    # The burst is over: the next photo gets its verdict again.
    after: dict[str, Any] = telegram.push_photo(photos[RED_TEXT], chats[0])
    assert await telegram.reply_text(after) == RED_TEXT
    assert app.running


async def test_300_photos_offered_at_15_a_second_each_get_one_verdict(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    """Offered faster than the bot can go (each getFile takes 0.3 s and only QUEUE_SIZE run at
    once: about 13 photos a second), the line grows and drains; nobody is told "busy"."""
    app = await start_bot(queue_size=QUEUE_SIZE)
    telegram.slow("getFile", seconds=0.3, times=300)
    photos = {RED_TEXT: noisy_photo(RED, 1), GREEN_TEXT: noisy_photo(GREEN, 2)}
    expected: dict[tuple[int, int], str] = {}
    started = time.monotonic()
    for n in range(300):
        chat = FakeTelegram.private_chat(7000 + n % 60)
        verdict = RED_TEXT if n % 2 else GREEN_TEXT
        message = telegram.push_photo(photos[verdict], chat)
        expected[(chat["id"], message["message_id"])] = verdict
        await asyncio.sleep(max(0.0, started + (n + 1) / 15 - time.monotonic()))
    await telegram.wait_for_messages(len(expected), timeout=60)
    await telegram.quiet(0.5)
    answers = collections.Counter((m["chat"]["id"], m["reply_to_message_id"], m["text"])
                                  for m in telegram.sent)  # fmt: skip
    assert all(count == 1 for count in answers.values()), "a photo was answered twice"
    got = {(chat, mid): text for chat, mid, text in answers}
    assert got == expected  # each photo exactly one verdict, the right one, none "busy"
    assert pipeline_of(app).admission.peak_in_flight <= QUEUE_SIZE
