"""Who gets in, and what leaks out: allow-list, webhook secret, the token, and the disk."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from telegram.ext import Application

from nothotdog.bot import replies
from nothotdog.bot.__main__ import webhook_options
from nothotdog.bot.access import Cooldown
from nothotdog.bot.app import pipeline_of
from nothotdog.bot.logs import REDACTED, redact, setup_logging
from nothotdog.bot.settings import Settings
from tests.badfiles import corpus
from tests.bot.conftest import StartBot
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
MEMBER, OUTSIDER = FakeTelegram.private_chat(1001), FakeTelegram.private_chat(666)
TEAM, STRANGERS = FakeTelegram.group_chat(-100111), FakeTelegram.group_chat(-100999)
SECRET = "Webhook_secret-42"


def _file_ids(message: dict[str, Any]) -> set[str]:
    if "photo" in message:
        return {s["file_id"] for s in message["photo"]}
    if "document" in message:
        return {message["document"]["file_id"]}
    return set()


# --- allow-list ---------------------------------------------------------------------------


async def test_allow_list_refuses_once_leaves_outsider_groups_and_classifies_nothing(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    app = await start_bot(allowed_chat_ids=frozenset({MEMBER["id"], TEAM["id"]}))
    outsider_photo = telegram.push_photo(solid(RED), OUTSIDER)
    silenced = [  # one refusal per OUTSIDER_REPLY_MINUTES is enough, however many they send
        telegram.push_document(solid(RED, fmt="PNG"), OUTSIDER, file_name="a.png"),
        *telegram.push_album([solid(RED), solid(GREEN)], OUTSIDER),
        telegram.push_command("/hotdog", OUTSIDER, reply_to=outsider_photo),
    ]
    strangers_photo = telegram.push_photo(solid(GREEN), STRANGERS)
    after_leaving = [  # pushed before the bot got round to leaving: it stays silent there
        telegram.push_command("/about", STRANGERS),
        telegram.push_text("lunch?", STRANGERS),
        telegram.push_document(b"%PDF-1.4", STRANGERS, file_name="a.pdf",
                               mime_type="application/pdf"),
    ]
    allowed = {
        id(m): (m, text) for m, text in [
            (telegram.push_photo(solid(RED), MEMBER), RED_TEXT),
            (telegram.push_photo(solid(GREEN), TEAM, user_id=OUTSIDER["id"]), GREEN_TEXT),
        ]
    }
    assert await telegram.reply_text(outsider_photo) == replies.not_allowed()
    assert await telegram.reply_text(strangers_photo) == replies.not_allowed_group()
    for message, text in allowed.values():
        assert await telegram.reply_text(message) == text
    await telegram.wait_until(lambda: bool(telegram.calls_to("leaveChat")))
    await telegram.quiet()
    assert len(telegram.sent) == 2 + len(allowed)  # one refusal per outsider chat, no more
    for message in silenced + after_leaving:
        assert telegram.replies_now(message) == []
    assert [int(c.params["chat_id"]) for c in telegram.calls_to("leaveChat")] == [STRANGERS["id"]]
    # Telegram sends nothing more from a group the bot has left.
    assert telegram.push_photo(solid(RED), STRANGERS)["update_id"] is None
    fetched = {c.params["file_id"] for c in telegram.calls_to("getFile")}
    for message in [outsider_photo, *silenced, strangers_photo, *after_leaving]:
        assert not fetched & _file_ids(message), "downloaded a file from a refused chat"
    assert pipeline_of(app).classified == len(allowed)


async def test_outsider_reply_minutes_sets_how_often_a_private_outsider_is_told(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    """0 minutes: every time (the interval itself is tested with a clock, below)."""
    await start_bot(allowed_chat_ids=frozenset({MEMBER["id"]}), outsider_reply_minutes=0)
    first = telegram.push_text("hello?", OUTSIDER)
    assert await telegram.reply_text(first, timeout=30) == replies.not_allowed()
    second = telegram.push_photo(solid(RED), OUTSIDER)
    assert await telegram.reply_text(second, timeout=30) == replies.not_allowed()
    assert telegram.calls_to("leaveChat") == []  # private chats are not left
    assert telegram.calls_to("getFile") == []


async def test_a_refusal_that_fails_gets_no_apology_either(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    await start_bot(allowed_chat_ids=frozenset({MEMBER["id"]}))
    telegram.fail("sendMessage", status=403, description="Forbidden: bot was blocked by the user")
    telegram.push_text("hi", OUTSIDER)
    await telegram.wait_until(lambda: bool(telegram.calls_to("sendMessage")))
    await telegram.quiet(0.5)
    assert len(telegram.calls_to("sendMessage")) == 1  # no "something went wrong" after it
    member = telegram.push_photo(solid(RED), MEMBER)
    assert await telegram.reply_text(member) == RED_TEXT


def test_cooldown_says_yes_once_per_interval_per_chat() -> None:
    now = [0.0]
    cooldown = Cooldown(60, clock=lambda: now[0])
    assert cooldown.allow(1) and cooldown.allow(2)
    assert not cooldown.allow(1)
    now[0] = 59.9
    assert not cooldown.allow(2)
    now[0] = 60.0
    assert cooldown.allow(1) and cooldown.allow(2)


def test_cooldown_forgets_the_oldest_past_its_capacity() -> None:
    now = [0.0]
    cooldown = Cooldown(60, capacity=3, clock=lambda: now[0])
    for chat in range(1, 5):  # 1 is forgotten to make room for 4
        now[0] += 1
        assert cooldown.allow(chat)
    assert len(cooldown._last) == 3
    assert cooldown.allow(1) and not cooldown.allow(4)


# --- webhook secret -----------------------------------------------------------------------


async def test_webhook_rejects_requests_without_the_right_secret(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/tg/hook"
    settings = Settings(webhook_url=url, webhook_listen="127.0.0.1", webhook_port=port)
    await start_bot(webhook=webhook_options(settings, SECRET))
    genuine = telegram.push_photo(solid(GREEN))  # POSTed by the fake, with the secret
    assert await telegram.reply_text(genuine) == GREEN_TEXT

    def forged(n: int) -> dict[str, Any]:
        file_id = telegram.add_file(solid(RED))
        photo = [{"file_id": file_id, "file_unique_id": f"forged{n}", "width": 640,
                  "height": 480, "file_size": 100}]
        message = {"message_id": 5000 + n, "date": genuine["date"], "chat": MEMBER,
                   "from": genuine["from"], "photo": photo}
        return {"update_id": 5000 + n, "message": message}

    bad_headers: list[dict[str, str]] = [
        {},
        {"X-Telegram-Bot-Api-Secret-Token": ""},
        {"X-Telegram-Bot-Api-Secret-Token": "wrong"},
        {"X-Telegram-Bot-Api-Secret-Token": SECRET.lower()},
        {"X-Telegram-Bot-Api-Secret-Token": SECRET[:-1]},
        {"X-Telegram-Bot-Api-Secret-Token": SECRET + "x"},
        {"X-Telegram-Bot-Api-Secret-Token": telegram.token},  # the bot token is not the secret
    ]
    async with aiohttp.ClientSession() as client:
        for n, headers in enumerate(bad_headers):
            async with client.post(url, json=forged(n), headers=headers) as response:
                assert response.status == 403, headers
                assert SECRET not in await response.text()
        right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
        elsewhere = url.replace("/tg/hook", "/tg/other")
        async with client.post(elsewhere, json=forged(90), headers=right) as response:
            assert response.status == 404
        await telegram.quiet(0.3)
        assert len(telegram.sent) == 1  # only the genuine photo was answered
        assert len(telegram.calls_to("getFile")) == 1  # nothing forged was even downloaded
        # The control: the same request with the right secret is accepted and answered.
        async with client.post(url, json=forged(99), headers=right) as response:
            assert response.status == 200
    await telegram.wait_for_messages(2)
    assert telegram.sent[-1]["reply_to_message_id"] == 5099


# --- the token ----------------------------------------------------------------------------


class _Raw(logging.Handler):
    """Keeps every record's message unredacted, to prove the redaction had work to do."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@contextlib.contextmanager
def _bot_logging(token: str) -> Iterator[tuple[io.StringIO, _Raw]]:
    """The bot's real log set-up (as ``main`` does it) at DEBUG, writing into a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    chatty = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    stream, raw = io.StringIO(), _Raw()
    with contextlib.redirect_stderr(stream):
        setup_logging("DEBUG", secrets=[token])
    root.addHandler(raw)
    logging.getLogger("httpx").setLevel(logging.INFO)  # logs every URL, token included
    try:
        yield stream, raw
    finally:
        root.handlers[:], root.level = saved
        for name, level in chatty.items():
            logging.getLogger(name).setLevel(level)


async def test_token_appears_in_no_log_reply_or_request(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    token = telegram.token
    secret_part = token.split(":", 1)[1]
    with _bot_logging(token) as (stream, raw):
        await start_bot(request_timeout=1.0)
        telegram.fail("getFile", status=400, description="Bad Request: wrong file_id")  # a bug
        telegram.fail("sendMessage", status=502)
        telegram.drop_download(after_bytes=10)
        telegram.slow("getFile", seconds=1.4)
        messages = [
            telegram.push_photo(solid(RED)),
            telegram.push_photo(solid(GREEN)),
            telegram.push_document(b"", file_name="empty.jpg", mime_type="image/jpeg"),
            telegram.push_document(b"junk", file_name="junk.png"),
            telegram.push_command("/about"),
            telegram.push_text("hello"),
        ]
        for message in messages:
            await telegram.replies_to(message, timeout=15)
        await telegram.quiet(0.3)
    assert any(token in line for line in raw.lines), "the test should have tempted the logs"
    rendered = stream.getvalue()
    assert "update failed" in rendered and "Traceback" in rendered  # errors were logged
    assert secret_part not in rendered
    for message in telegram.sent:
        assert secret_part not in message["text"]
    assert any(m["text"] == replies.failed() for m in telegram.sent)  # the error reached a user
    for call in telegram.calls:
        assert secret_part not in json.dumps(call.params, default=str)


# --- the disk -----------------------------------------------------------------------------

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_FILE_EVENTS = frozenset({
    "os.rename", "os.remove", "os.mkdir", "os.truncate", "os.link", "os.symlink",
    "shutil.copyfile", "shutil.move", "tempfile.mkstemp", "tempfile.mkdtemp",
})
_writes: list[tuple[str, str]] | None = None  # collecting while not None
_hooked = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    """Python's audit hook: sees every open() and file operation, in every thread."""
    if _writes is None:
        return
    if event == "open":
        path, mode, flags = args
        target = str(path)
        if target.startswith(("/dev/", "/proc/")):
            return
        if (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        ):
            _writes.append((event, target))
    elif event in _FILE_EVENTS:
        _writes.append((event, str(args[0]) if args else ""))


@contextlib.contextmanager
def _no_file_writes() -> Iterator[list[tuple[str, str]]]:
    global _writes, _hooked
    if not _hooked:
        sys.addaudithook(_audit)  # cannot be removed; idle unless _writes is set
        _hooked = True
    _writes = []
    try:
        yield _writes
    finally:
        _writes = None


async def test_nothing_a_user_sends_is_written_to_disk(
    telegram: FakeTelegram, bot: Application, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir, scratch = tmp_path / "cwd", tmp_path / "tmp"
    workdir.mkdir()
    scratch.mkdir()
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    files = {f.name: f for f in corpus()}
    with _no_file_writes() as writes:
        telegram.drop_download(after_bytes=100)
        sent = [telegram.push_photo(solid(RED)), telegram.push_photo(solid(GREEN), TEAM)]
        for name in ("heic", "animated-webp", "png-bomb-20000", "corrupt-png", "svg", "pdf"):
            f = files[name]
            sent.append(telegram.push_document(f.data, file_name=f.file_name,
                                               mime_type=f.mime_type))
        for message in sent:
            await telegram.replies_to(message, timeout=15)
        await telegram.quiet(0.2)
    assert writes == []
    assert list(workdir.iterdir()) == [] and list(scratch.iterdir()) == []
    assert {m["text"] for m in telegram.sent} >= {RED_TEXT, GREEN_TEXT}


def test_photo_path_has_no_file_writing_calls() -> None:
    """A static backstop for the run-time check: no write API anywhere the bytes go."""
    forbidden = {"write_bytes", "write_text", "download_to_drive", "NamedTemporaryFile",
                 "TemporaryFile", "SpooledTemporaryFile", "mkstemp", "mkdtemp", "save"}
    # The command line writes the files its user asks for (nothotdog why --out, nothotdog
    # feedback export DIR); the bot never imports them. /why encodes its picture into an
    # io.BytesIO and sends it from memory; votes go to DATABASE_URL only when someone votes.
    not_the_bot = {"cli.py", "feedback_export.py"}
    allowed = {("classifier.py", "save")}
    sources = [
        *sorted(p for p in (REPO / "bot").glob("*.py") if p.name not in not_the_bot),
        REPO / "contract" / "imaging.py",
        REPO / "contract" / "heatmap.py",
    ]
    found = []
    for path in sources:
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            builtin_open = isinstance(func, ast.Name) and func.id == "open"
            if (name in forbidden or builtin_open) and (path.name, name) not in allowed:
                found.append(f"{path.name}:{node.lineno} {name}")
    assert found == []


def test_redaction_covers_the_url_encoded_token_and_its_private_half() -> None:
    token = "123456789:AAFake-Token_private"
    text = (f"GET http://h/file/bot123456789%3AAAFake-Token_private/x.jpg; bot{token}/getMe; "
            "AAFake-Token_private")
    scrubbed = redact(text, [token])
    assert "AAFake-Token_private" not in scrubbed
    assert scrubbed.count(REDACTED) == 3
