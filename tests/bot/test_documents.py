"""Image files: big ones judged from their preview or refused unread, bytes admitted within the
budget, and a slow decode that holds up nobody else."""

from __future__ import annotations

import functools
import struct
import zlib

from telegram.ext import Application

from nothotdog.bot import replies
from nothotdog.bot.app import pipeline_of
from nothotdog.contract.layout import MB
from tests.badfiles import png_chunk
from tests.bot.conftest import StartBot
from tests.bot.harness import until
from tests.bot.memory import peak_memory
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid

GROUP = FakeTelegram.group_chat(-100555)
BIG = 15 * MB  # over MAX_FILE_MB (10), under Telegram's 20 MB
SIDE = 6_324  # 40 MP: the largest image the contract accepts


@functools.cache
def rgb_png(side: int = SIDE, color: tuple[int, int, int] = RED) -> bytes:
    """A ``side`` x ``side`` 8-bit RGB PNG made row by row, never holding its pixels: 120 KB
    on the wire for 40 MP, 160 MB once Pillow has decoded it."""
    row = b"\x00" + bytes(color) * side
    compressor = zlib.compressobj(9)
    data = b"".join(compressor.compress(row) for _ in range(side)) + compressor.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", data)
            + png_chunk(b"IEND", b""))


def fetched(api: FakeTelegram) -> set[str]:
    return {str(c.params["file_id"]) for c in api.calls_to("getFile")}


async def test_big_image_file_is_judged_from_its_preview(
    telegram: FakeTelegram, bot: Application
) -> None:
    message = telegram.push_document(solid(GREEN), file_name="scan.png", declared_size=BIG,
                                     thumbnail=solid(RED, size=(320, 240)))
    assert await telegram.reply_text(message, timeout=30) == replies.from_preview(RED_TEXT, 10)
    assert fetched(telegram) == {message["document"]["thumbnail"]["file_id"]}


async def test_big_image_file_without_a_preview_is_refused_unread(
    telegram: FakeTelegram, bot: Application
) -> None:
    message = telegram.push_document(solid(GREEN), file_name="scan.png", declared_size=BIG)
    assert await telegram.reply_text(message, timeout=30) == replies.too_large(BIG, 10)
    assert telegram.calls_to("getFile") == [] and telegram.calls_to("file") == []


async def test_hotdog_command_on_a_big_file_uses_its_preview(
    telegram: FakeTelegram, bot: Application
) -> None:
    document = telegram.push_document(solid(RED), GROUP, file_name="x.jpg",
                                      mime_type="image/jpeg", declared_size=BIG,
                                      thumbnail=solid(GREEN, size=(320, 240)))
    command = telegram.push_command("/hotdog", GROUP, reply_to=document)
    assert await telegram.reply_text(document, timeout=30) == replies.from_preview(GREEN_TEXT, 10)
    assert telegram.replies_now(command) == []


async def test_size_known_only_from_get_file_is_refused_before_download(
    telegram: FakeTelegram, bot: Application
) -> None:
    file_id = telegram.add_file(solid(RED), declared_size=BIG)  # getFile says 15 MB
    document = {"file_id": file_id, "file_unique_id": "u15", "file_name": "a.jpg",
                "mime_type": "image/jpeg"}  # the message says nothing
    message = telegram.push_message(document=document)
    assert await telegram.reply_text(message, timeout=30) == replies.too_large(BIG, 10)
    assert telegram.calls_to("file") == []


async def test_files_are_admitted_on_their_declared_size_and_wait_their_turn(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    """8 MB budget: files may hold 6 MB of it, so a 4 MB file and a 3 MB file do not fit
    together: the second waits, undownloaded, and the small photo after it waits its turn."""
    app = await start_bot(memory_budget_mb=8, max_file_mb=4)
    telegram.slow("getFile", seconds=5)  # the first file holds its 4 MB meanwhile
    first = telegram.push_document(solid(RED, fmt="PNG"), file_name="a.png", declared_size=4 * MB)
    await telegram.wait_until(lambda: len(telegram.calls_to("getFile")) == 1)
    second = telegram.push_document(solid(RED, fmt="PNG"), FakeTelegram.private_chat(2),
                                    file_name="b.png", declared_size=3 * MB)
    small = telegram.push_photo(solid(GREEN), FakeTelegram.private_chat(3))
    await until(lambda: pipeline_of(app).admission.waiting == 2)  # no API call signals it
    assert len(telegram.calls_to("getFile")) == 1  # waiting costs no download
    assert await telegram.reply_text(small, timeout=30) == GREEN_TEXT
    assert await telegram.reply_text(second, timeout=30) == RED_TEXT
    assert await telegram.reply_text(first, timeout=30) == RED_TEXT
    order = [m["reply_to_message"]["message_id"] for m in telegram.sent]
    assert order == [first["message_id"], second["message_id"], small["message_id"]]
    budget = pipeline_of(app).admission
    assert budget.peak <= budget.files_limit + budget.total // 4
    assert budget.used == 0  # everything given back


async def test_image_whose_decode_cannot_fit_the_budget_is_refused_from_its_header(
    telegram: FakeTelegram, bot: Application
) -> None:
    """40 MP RGB needs ~165 MB to decode; the default budget is 48 MB: refused, undecoded."""
    data = rgb_png()
    with peak_memory() as peak:
        message = telegram.push_document(data, file_name="huge.png")
        text = await telegram.reply_text(message, timeout=30)
    assert text == replies.unreadable(f"the image is too large ({SIDE}x{SIDE} pixels)")
    assert peak.rss_growth_mb < 32  # decoded, it would take 158 MiB
    after = telegram.push_photo(solid(GREEN))
    assert await telegram.reply_text(after, timeout=30) == GREEN_TEXT


async def test_a_slow_decode_holds_up_no_other_chat(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    """One inference thread, as in production: decoding a 40 MP PNG (seconds) happens on a
    decode thread, and small photos from other chats are decoded and answered meanwhile."""
    app = await start_bot(worker_threads=1, memory_budget_mb=256)
    slow = telegram.push_document(rgb_png(), FakeTelegram.private_chat(1), file_name="big.png")
    await telegram.wait_until(lambda: bool(telegram.calls_to("file")))  # decoding from now
    quick = [telegram.push_photo(solid(GREEN), FakeTelegram.private_chat(100 + i))
             for i in range(4)]
    for message in quick:
        assert await telegram.reply_text(message, timeout=30) == GREEN_TEXT
    assert telegram.replies_now(slow) == [], "the big decode finished first: no evidence"
    assert await telegram.reply_text(slow, timeout=60) == RED_TEXT
    assert pipeline_of(app).admission.used == 0
