"""A fake Telegram Bot API server on 127.0.0.1, for driving the real bot over real HTTP.

Point python-telegram-bot at it with ``base_url=api.base_url`` and
``base_file_url=api.base_file_url``. It speaks enough of the Bot API for the bot (getMe,
getUpdates with long polling, getFile and file downloads, sendMessage, sendPhoto,
answerCallbackQuery, setMyCommands, getMyCommands, deleteWebhook, setWebhook, getWebhookInfo,
sendChatAction, getChatMember with ``chat_admins``, ...), records every call, and can inject faults:

    api.fail("sendMessage", status=502)           # next sendMessage answers 502
    api.rate_limit("sendMessage", retry_after=1)  # 429 with parameters.retry_after
    api.slow("getFile", seconds=3)                # answer late
    api.drop_download(after_bytes=100)            # close the connection mid-file
    api.after_handling("sendMessage", "drop")     # do it, then hang up without an answer
    api.hook = my_coroutine                        # anything else: see ``Hook``

Tests push updates (``push_photo``, ``push_document``, ``push_command``, ``push_album``,
``push_callback_query`` for a button press) and await the bot's answers (``replies_to``,
``wait_for_messages``). When the bot has called setWebhook, pushed updates are POSTed to its
webhook, with the secret header, as Telegram does.
It imports nothing from the bot. It is a test tool, not part of the product: it lives in
tests/, is not installed by ``pip install .`` nor copied into the Docker image, and the tests
and benchmarks (``python -m bench``) import it as ``tests.fakebot`` from the checkout. It
needs aiohttp (the ``dev`` extra).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import socket
import struct
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web
from PIL import Image

DEFAULT_TOKEN = "123456789:AAFakeTokenForTests_abcdefghijklmnopq"
LOOPBACK = "127.0.0.1"
# How long a test waits for the bot by default. It returns as soon as the bot has answered;
# the margin is for a shared machine where a test process can be starved for seconds.
WAIT_S = 30.0
# Form fields that are text even when they look like JSON (``"123"``, ``"true"``).
_TEXT_FIELDS = frozenset(
    {"text", "caption", "url", "secret_token", "file_id", "action", "parse_mode", "query"}
)


@dataclass
class Call:
    """One request the bot made: method (``"file"`` for downloads), decoded parameters."""

    method: str
    params: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


@dataclass
class Fault:
    """What to do to the next ``times`` calls of ``method`` (``"file"`` for downloads).

    ``delay`` seconds first; then ``status`` (an error answer with ``description`` and, for
    429, ``retry_after``), or ``drop_after`` bytes of the file then a closed connection, or,
    with neither, the normal answer. ``after`` (Bot API methods): the call takes effect as
    usual, then the answer is lost - see :data:`AFTER_EFFECTS`.
    """

    method: str
    times: int = 1
    status: int | None = None
    description: str = ""
    retry_after: int | None = None
    delay: float = 0.0
    drop_after: int | None = None
    after: str | None = None
    hits: int = 0


# Ways a request can fail after Telegram has acted on it, as the fake can play them:
AFTER_EFFECTS = {
    "drop": "the connection closes without an answer",
    "cut": "the answer stops halfway and the connection closes",
    "reset": "the connection is reset (TCP RST) instead of answered",
    "garble": "the answer is 200 but not JSON (an HTML page from a proxy)",
}


# A hook sees each call first; a response it returns is sent instead of the normal one.
Hook = Callable[[Call, web.Request], Awaitable[web.StreamResponse | None]]


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    declared_size: int | None

    @property
    def size(self) -> int:
        """The file_size Telegram reports: the declared one when a test lies about it."""
        return self.declared_size if self.declared_size is not None else len(self.data)

    def file_fields(self) -> dict[str, Any]:
        """What every Telegram file object (PhotoSize, Document, File) starts with."""
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id,
                "file_size": self.size}  # fmt: skip


class FakeTelegram:
    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        username: str = "nothotdog_test_bot",
        can_read_all_group_messages: bool = True,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.username = username
        self.can_read_all_group_messages = can_read_all_group_messages
        self.calls: list[Call] = []
        self.sent: list[dict[str, Any]] = []  # every message the bot sent, as returned
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # all messages, by chat and id
        self.faults: list[Fault] = []
        self.hook: Hook | None = None
        self.files: dict[str, StoredFile] = {}
        self.admin_in: set[int] = set()  # group chats where the bot is an admin
        self.chat_admins: dict[int, set[int]] = {}  # group chat -> its admins' user ids
        self.left: set[int] = set()  # chats the bot has left: Telegram sends nothing from them
        self.commands: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._file_ids = itertools.count(1)
        self._query_ids = itertools.count(1)
        self._waiters: list[asyncio.Future[None]] = []
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._deliveries: set[asyncio.Task[None]] = set()
        self.port = 0
        self._closing = False

    # --- lifecycle ------------------------------------------------------------------------

    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, LOOPBACK, 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def close(self) -> None:
        self._closing = True
        self._notify()  # release pending long polls, or shutdown would wait them out
        for task in list(self._deliveries):
            task.cancel()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> FakeTelegram:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/file/bot"

    # --- faults ---------------------------------------------------------------------------

    def inject(self, method: str, **kwargs: Any) -> Fault:
        fault = Fault(method, **kwargs)
        self.faults.append(fault)
        return fault

    def fail(self, method: str, status: int = 500, times: int = 1, description: str = "") -> Fault:
        return self.inject(method, status=status, times=times, description=description)

    def rate_limit(self, method: str, retry_after: int = 1, times: int = 1) -> Fault:
        return self.inject(
            method,
            status=429,
            times=times,
            retry_after=retry_after,
            description=f"Too Many Requests: retry after {retry_after}",
        )

    def slow(self, method: str, seconds: float, times: int = 1) -> Fault:
        return self.inject(method, delay=seconds, times=times)

    def drop_download(self, after_bytes: int = 64, times: int = 1) -> Fault:
        return self.inject("file", drop_after=after_bytes, times=times)

    def after_handling(self, method: str, effect: str, times: int = 1) -> Fault:
        """``method`` takes effect (a message is sent), then its answer is lost: ``effect``
        is one of :data:`AFTER_EFFECTS`."""
        if effect not in AFTER_EFFECTS:
            raise ValueError(f"effect must be one of {sorted(AFTER_EFFECTS)}")
        return self.inject(method, after=effect, times=times)

    # --- chats, files and updates ------------------------------------------------------------

    @staticmethod
    def private_chat(user_id: int = 1001) -> dict[str, Any]:
        return {"id": user_id, "type": "private", "first_name": f"User{user_id}"}

    @staticmethod
    def group_chat(chat_id: int = -1001234567890, kind: str = "supergroup") -> dict[str, Any]:
        return {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}

    def add_file(self, data: bytes, suffix: str = "jpg", declared_size: int | None = None) -> str:
        """Store ``data`` for download; ``declared_size`` lets a test lie about its size."""
        n = next(self._file_ids)
        file_id = f"FILE{n:06d}x"  # never all digits: the server would read it as a number
        self.files[file_id] = StoredFile(
            file_id=file_id,
            file_unique_id=f"U{n:06d}",
            data=data,
            file_path=f"files/file_{n}.{suffix}",
            declared_size=declared_size,
        )
        return file_id

    def push_update(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        self._updates.append(update)
        if self.webhook:
            task = asyncio.create_task(self._deliver(update))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)
        self._notify()
        return update

    def push_message(
        self,
        chat: dict[str, Any] | None = None,
        *,
        user_id: int | None = None,
        reply_to: dict[str, Any] | None = None,
        **content: Any,
    ) -> dict[str, Any]:
        """Push a new message; returns it, with ``update_id`` (None: privacy mode hid it)."""
        chat = chat or self.private_chat()
        sender_id = user_id or (chat["id"] if chat["type"] == "private" else 1001)
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": sender_id, "is_bot": False, "first_name": f"User{sender_id}"},
            **content,
        }
        if reply_to is not None:
            message["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "update_id"}
        self.messages[(chat["id"], message["message_id"])] = message
        if chat["id"] in self.left or not self.bot_sees(message):
            return {**message, "update_id": None}
        update = self.push_update({"message": message})
        return {**message, "update_id": update["update_id"]}

    def bot_sees(self, message: dict[str, Any]) -> bool:
        """Telegram's group privacy mode, simplified: with it on, a group delivers only messages
        starting with ``/`` (text or caption) and replies to the bot."""
        chat = message["chat"]
        if chat["type"] == "private" or self.can_read_all_group_messages:
            return True
        if chat["id"] in self.admin_in:
            return True
        text = message.get("text") or message.get("caption") or ""
        replied = message.get("reply_to_message") or {}
        return text.startswith("/") or replied.get("from", {}).get("id") == self.bot_id

    def photo_sizes(
        self,
        data: bytes,
        width: int = 1280,
        height: int = 960,
        declared_size: int | None = None,
        thumbnails: Iterable[int] = (90, 320, 800),
    ) -> list[dict[str, Any]]:
        """PhotoSize list as Telegram sends it: thumbnails (longer side) up to the original.

        Every size serves the same bytes; tests tell which one the bot chose by its file_id.
        """
        sizes = []
        longest = max(width, height)
        for side in [*(t for t in thumbnails if t < longest), longest]:
            scale = side / longest
            w, h = max(1, round(width * scale)), max(1, round(height * scale))
            size = declared_size if side == longest else None
            sizes.append(self.photo_size(data, w, h, declared_size=size))
        return sizes

    def photo_size(
        self, data: bytes, width: int, height: int, declared_size: int | None = None
    ) -> dict[str, Any]:
        """Store ``data`` and describe it as one PhotoSize: the shape of a photo's sizes, a
        document's preview and a sent photo alike."""
        stored = self.files[self.add_file(data, declared_size=declared_size)]
        return {**stored.file_fields(), "width": width, "height": height}

    def push_photo(
        self,
        data: bytes,
        chat: dict[str, Any] | None = None,
        *,
        width: int = 1280,
        height: int = 960,
        caption: str | None = None,
        media_group_id: str | None = None,
        declared_size: int | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        content: dict[str, Any] = {
            "photo": self.photo_sizes(data, width, height, declared_size=declared_size)
        }
        if caption is not None:
            content["caption"] = caption
            if caption.startswith("/"):
                length = len(caption.split()[0])
                content["caption_entities"] = [
                    {"type": "bot_command", "offset": 0, "length": length}
                ]
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        return self.push_message(chat, **content, **kwargs)

    def push_album(
        self, images: list[bytes], chat: dict[str, Any] | None = None, **kwargs: Any
    ) -> list[dict[str, Any]]:
        group_id = f"album{next(self._file_ids)}"
        return [self.push_photo(d, chat, media_group_id=group_id, **kwargs) for d in images]

    def push_document(
        self,
        data: bytes,
        chat: dict[str, Any] | None = None,
        *,
        file_name: str = "picture.png",
        mime_type: str | None = "image/png",
        declared_size: int | None = None,
        thumbnail: bytes | None = None,
        thumbnail_size: tuple[int, int] = (320, 240),
        **kwargs: Any,
    ) -> dict[str, Any]:
        """``thumbnail``: the JPEG preview Telegram makes of an image file (at most 320 px)."""
        suffix = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        file_id = self.add_file(data, suffix=suffix, declared_size=declared_size)
        document: dict[str, Any] = {**self.files[file_id].file_fields(), "file_name": file_name}
        if mime_type is not None:
            document["mime_type"] = mime_type
        if thumbnail is not None:
            document["thumbnail"] = self.photo_size(thumbnail, *thumbnail_size)
        return self.push_message(chat, document=document, **kwargs)

    def push_command(
        self, command: str, chat: dict[str, Any] | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        """``command`` like ``"/hotdog"`` or ``"/hotdog@nothotdog_test_bot some text"``."""
        length = len(command.split()[0])
        entities = [{"type": "bot_command", "offset": 0, "length": length}]
        return self.push_message(chat, text=command, entities=entities, **kwargs)

    def push_text(self, text: str, chat: dict[str, Any] | None = None, **kwargs: Any) -> dict:
        return self.push_message(chat, text=text, **kwargs)

    def push_callback_query(
        self, message: dict[str, Any], data: str, *, user_id: int = 1001
    ) -> dict[str, Any]:
        """A press on an inline button under ``message`` (one the bot sent, from ``sent``);
        Telegram sends the message as it is, with the message it replied to."""
        chat_id, message_id = message["chat"]["id"], message["message_id"]
        query = {
            "id": f"Q{next(self._query_ids)}",
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
            "message": self.messages[(chat_id, message_id)],
            "chat_instance": f"ci{chat_id}",
            "data": data,
        }
        return self.push_update({"callback_query": query})

    # --- what the bot did -------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def replies_in(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for m in self.sent if m["chat"]["id"] == chat_id]

    def replies_now(self, message: dict[str, Any]) -> list[dict[str, Any]]:
        """Messages the bot has sent so far as replies to ``message``."""
        return [
            m
            for m in self.sent
            if m["chat"]["id"] == message["chat"]["id"]
            and m.get("reply_to_message_id") == message["message_id"]
        ]

    async def replies_to(
        self, message: dict[str, Any], count: int = 1, timeout: float = WAIT_S
    ) -> list[dict[str, Any]]:
        """Wait until the bot has answered ``message`` ``count`` times; return the answers."""
        await self.wait_until(lambda: len(self.replies_now(message)) >= count, timeout)
        return self.replies_now(message)

    async def reply_text(self, message: dict[str, Any], timeout: float = WAIT_S) -> str:
        """The text of the bot's (first) reply to ``message``."""
        return (await self.replies_to(message, 1, timeout))[0]["text"]

    async def wait_for_messages(self, count: int, timeout: float = WAIT_S) -> list[dict[str, Any]]:
        await self.wait_until(lambda: len(self.sent) >= count, timeout)
        return list(self.sent)

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = WAIT_S) -> None:
        """Wait for ``predicate`` to hold; re-checked whenever a call or update comes in."""
        if not await self._wait_for(predicate, timeout):
            raise AssertionError(
                f"timed out after {timeout}s; the bot made {len(self.calls)} calls, last: "
                f"{[c.method for c in self.calls[-8:]]}"
            )

    async def quiet(self, seconds: float = 0.3) -> None:
        """Let the bot finish whatever it might still send (to assert it sent nothing)."""
        await asyncio.sleep(seconds)

    # --- HTTP -----------------------------------------------------------------------------

    def _notify(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def _wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            waiter = loop.create_future()
            self._waiters.append(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except TimeoutError:
                return predicate()
        return True

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        call = Call(method, await _params(request))
        self.calls.append(call)
        self._notify()
        if request.match_info["token"] != self.token:
            return _error(401, "Unauthorized")
        response, fault = await self._faulty(call, request)
        if response is not None:
            return response
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            return _error(404, "Not Found: method not found")
        try:
            result = await handler(call.params)
        except _ApiError as exc:
            return _error(exc.status, exc.description)
        self._notify()
        if fault is not None and fault.after is not None:
            return await _lose_answer(fault.after, {"ok": True, "result": result}, request)
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        call = Call("file", {"file_path": path})
        self.calls.append(call)
        self._notify()
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        stored = next((f for f in self.files.values() if f.file_path == path), None)
        if stored is None:
            return web.Response(status=404)
        if self.hook is not None and (hooked := await self.hook(call, request)) is not None:
            return hooked
        fault = self._take_fault("file")
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and fault.drop_after is not None:
            response = web.StreamResponse(headers={"Content-Length": str(len(stored.data))})
            await response.prepare(request)
            await response.write(stored.data[: fault.drop_after])
            assert request.transport is not None
            request.transport.close()  # the client sees the body end early
            return response
        if fault is not None and fault.status is not None:
            return web.Response(status=fault.status)
        return web.Response(body=stored.data, content_type="application/octet-stream")

    def _take_fault(self, method: str) -> Fault | None:
        for fault in self.faults:
            if fault.method == method and fault.hits < fault.times:
                fault.hits += 1
                return fault
        return None

    async def _faulty(
        self, call: Call, request: web.Request
    ) -> tuple[web.StreamResponse | None, Fault | None]:
        if self.hook is not None and (hooked := await self.hook(call, request)) is not None:
            return hooked, None
        fault = self._take_fault(call.method)
        if fault is None:
            return None, None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.status is None:
            return None, fault
        description = fault.description or f"Error {fault.status}"
        return _error(fault.status, description, fault.retry_after), fault

    async def _deliver(self, update: dict[str, Any]) -> None:
        assert self.webhook is not None
        if self._client is None:
            self._client = aiohttp.ClientSession()
        headers = {}
        if self.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = self.webhook["secret_token"]
        async with self._client.post(self.webhook["url"], json=update, headers=headers) as resp:
            record = {"update_id": update["update_id"], "status": resp.status}
            self.calls.append(Call("webhook", record))
        self._notify()

    # --- Bot API methods ---------------------------------------------------------------------

    async def _m_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Not Hotdog",
            "username": self.username,
            "can_join_groups": True,
            "can_read_all_group_messages": self.can_read_all_group_messages,
            "supports_inline_queries": False,
        }

    async def _m_getUpdates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset") or 0)
        limit = int(params.get("limit") or 100)
        timeout = float(params.get("timeout") or 0)
        if offset:  # Telegram forgets every update below the offset
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        await self._wait_for(lambda: bool(self._updates) or self._closing, timeout)
        return self._updates[:limit]

    async def _m_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        stored = self.files.get(str(params.get("file_id")))
        if stored is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        if stored.size > 20 * 1024 * 1024:
            raise _ApiError(400, "Bad Request: file is too big")
        return {**stored.file_fields(), "file_path": stored.file_path}

    async def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        text = str(params.get("text", ""))
        if not text:
            raise _ApiError(400, "Bad Request: message text is empty")
        return self._send(params, text=text)

    async def _m_sendPhoto(self, params: dict[str, Any]) -> dict[str, Any]:
        """The uploaded bytes stay in the recorded ``params["photo"]``; the message gets one
        PhotoSize of the image's real size."""
        data = params.get("photo")
        if not isinstance(data, bytes) or not data:
            raise _ApiError(400, "Bad Request: there is no photo in the request")
        try:
            width, height = Image.open(io.BytesIO(data)).size
        except OSError:
            raise _ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED") from None
        content: dict[str, Any] = {"photo": [self.photo_size(data, width, height)]}
        if params.get("caption"):
            content["caption"] = str(params["caption"])
        return self._send(params, **content)

    def _send(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        """Record a message from the bot, returned as Telegram returns it: with the message
        it replies to, and its inline keyboard."""
        chat_id = int(params["chat_id"])
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": _chat_for(chat_id),
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "Not Hotdog"},
            **content,
        }
        reply = params.get("reply_parameters") or {}
        reply_to = reply.get("message_id", params.get("reply_to_message_id"))
        replied = self.messages.get((chat_id, reply_to)) if reply_to is not None else None
        if replied is not None:
            message["reply_to_message"] = {k: v for k, v in replied.items()
                                           if k != "reply_to_message"}  # fmt: skip
        if params.get("reply_markup"):
            message["reply_markup"] = params["reply_markup"]
        self.messages[(chat_id, message["message_id"])] = message
        self.sent.append({**message, "reply_to_message_id": reply_to, "params": params})
        return message

    async def _m_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        """The new buttons on a message the bot sent; Telegram refuses a change to nothing."""
        message = self.messages.get((int(params["chat_id"]), int(params["message_id"])))
        if message is None:
            raise _ApiError(400, "Bad Request: message to edit not found")
        markup = params.get("reply_markup")
        if markup == message.get("reply_markup"):
            raise _ApiError(400, "Bad Request: message is not modified")
        message["reply_markup"] = markup
        return message

    async def _m_getChatMember(self, params: dict[str, Any]) -> dict[str, Any]:
        """A private chat's user is its "owner"; in groups, ``chat_admins`` are admins."""
        chat_id, user_id = int(params["chat_id"]), int(params["user_id"])
        admin = chat_id == user_id or user_id in self.chat_admins.get(chat_id, set())
        user = {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"}
        if not admin:
            return {"status": "member", "user": user}
        return {"status": "administrator", "user": user, "can_be_edited": False,
                "is_anonymous": False, "can_manage_chat": True, "can_delete_messages": False,
                "can_manage_video_chats": False, "can_restrict_members": False,
                "can_promote_members": False, "can_change_info": False,
                "can_invite_users": False, "can_post_stories": False,
                "can_edit_stories": False, "can_delete_stories": False}  # fmt: skip

    async def _m_sendChatAction(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_leaveChat(self, params: dict[str, Any]) -> bool:
        self.left.add(int(params["chat_id"]))
        return True

    async def _m_setMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands = list(params.get("commands") or [])
        return True

    async def _m_getMyCommands(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        return self.commands

    async def _m_deleteMyCommands(self, params: dict[str, Any]) -> bool:
        self.commands = []
        return True

    async def _m_deleteWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = None
        if params.get("drop_pending_updates"):
            self._updates.clear()
        return True

    async def _m_setWebhook(self, params: dict[str, Any]) -> bool:
        self.webhook = {"url": params["url"], "secret_token": params.get("secret_token")}
        return True

    async def _m_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        url = self.webhook["url"] if self.webhook else ""
        return {"url": url, "has_custom_certificate": False, "pending_update_count": 0}

    async def _m_logOut(self, params: dict[str, Any]) -> bool:
        return True

    async def _m_close(self, params: dict[str, Any]) -> bool:
        return True


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _error(status: int, description: str, retry_after: int | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if retry_after is not None:
        body["parameters"] = {"retry_after": retry_after}
    return web.json_response(body, status=status)


async def _lose_answer(
    effect: str, body: dict[str, Any], request: web.Request
) -> web.StreamResponse:
    """The call took effect; now lose its answer as ``effect`` (see AFTER_EFFECTS) says."""
    if effect == "garble":
        return web.Response(text="<html><body>OK</body></html>", content_type="text/html")
    transport = request.transport
    assert transport is not None
    response = web.StreamResponse()
    if effect == "cut":
        payload = json.dumps(body).encode()
        response.headers["Content-Length"] = str(len(payload))
        response.content_type = "application/json"
        await response.prepare(request)
        await response.write(payload[: len(payload) // 2])
    if effect == "reset":
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.close()  # "drop": nothing was written at all
    return response  # aiohttp writes nothing more to a closed transport


def _chat_for(chat_id: int) -> dict[str, Any]:
    if chat_id > 0:
        return FakeTelegram.private_chat(chat_id)
    return FakeTelegram.group_chat(chat_id)


async def _params(request: web.Request) -> dict[str, Any]:
    """Bot API parameters from the query, a form, multipart or JSON, with JSON values decoded."""
    raw: dict[str, Any] = dict(request.query)
    if request.method == "POST":
        if request.content_type == "application/json":
            raw.update(await request.json())
            return raw
        form = await request.post()
        raw.update({k: v for k, v in form.items() if isinstance(v, str)})
        files = {k: v.file.read() for k, v in form.items() if isinstance(v, web.FileField)}
        return {**{k: _decode(k, v) for k, v in raw.items()}, **files}
    return {k: _decode(k, v) for k, v in raw.items()}


def _decode(key: str, value: Any) -> Any:
    if not isinstance(value, str) or key in _TEXT_FIELDS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value
