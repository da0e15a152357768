"""The real bot as a subprocess, talking to tests.fakebot.FakeTelegram on 127.0.0.1.

Shared by bench.load and bench.startup. The fake server is the test suite's own (reused, not
copied); ``BenchTelegram`` only adds a timestamp and a waiting future for each reply, so
photo-to-reply latency is measured on one clock, in the process that sent the photo.
Nothing here ever talks to anything but 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import child_env, peak_rss_mb
from tests.fakebot import FakeTelegram

VERDICT_PREFIXES = ("🌭", "🚫")  # anything else the bot says about a photo is an error reply
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0


class BenchTelegram(FakeTelegram):
    """The fake Bot API plus a future per expected reply, resolved at the moment it arrives."""

    def __init__(self) -> None:
        super().__init__()
        self._expected: dict[tuple[int, int], asyncio.Future[tuple[float, str]]] = {}
        self._sizes: list[dict[str, Any]] | None = None

    def set_photo(self, data: bytes) -> None:
        """Every photo sent is this JPEG, offered in Telegram's sizes (the bot picks 320 px).
        One set of file ids serves all sends, so the server's file table stays small."""
        self._sizes = self.photo_sizes(data, width=1280, height=960)

    def send_photo(self, chat_id: int) -> tuple[float, asyncio.Future[tuple[float, str]]]:
        """Push a photo update into ``chat_id``; (when, future of (reply time, reply text))."""
        assert self._sizes is not None, "call set_photo first"
        future: asyncio.Future[tuple[float, str]] = asyncio.get_running_loop().create_future()
        sent_at = time.perf_counter()
        message = self.push_message(self.private_chat(chat_id), photo=self._sizes)
        self._expected[(chat_id, message["message_id"])] = future
        return sent_at, future

    async def _m_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        message = await super()._m_sendMessage(params)
        now = time.perf_counter()
        key = (int(params["chat_id"]), self.sent[-1].get("reply_to_message_id"))
        future = self._expected.pop(key, None)  # type: ignore[arg-type]
        if future is not None and not future.done():
            future.set_result((now, message["text"]))
        return message


@dataclass
class BotProcess:
    """A running ``python -m MODULE``: its pid, log file, and what it cost."""

    proc: subprocess.Popen[bytes]
    log_path: Path
    started_at: float  # time.monotonic() just before Popen
    module: str
    env: dict[str, str] = field(default_factory=dict)
    peak_rss_mb: float = 0.0
    tensorflow_loaded: bool | None = None
    exit_code: int | None = None

    def sample(self) -> None:
        """Read VmHWM (peak RSS so far) and whether any TensorFlow library is mapped."""
        if self.proc.poll() is not None:
            return
        self.peak_rss_mb = max(self.peak_rss_mb, peak_rss_mb(self.proc.pid))
        maps = Path(f"/proc/{self.proc.pid}/maps").read_text(errors="replace")
        # TensorFlow's own package, not OpenVINO's TensorFlow *frontend*, which importing
        # openvino maps (openvino/frontend/tensorflow/, libopenvino_tensorflow_frontend).
        self.tensorflow_loaded = "site-packages/tensorflow/" in maps

    def cpu_seconds(self) -> float:
        """User + system CPU time the process has used so far (0 once it has exited)."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 15) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_counts(self) -> dict[str, int]:
        text = self.log_path.read_text(errors="replace").splitlines()
        return {
            "error_lines": sum(" ERROR " in line or "Traceback" in line for line in text),
            "warning_lines": sum(" WARNING " in line for line in text),
        }

    async def stop(self) -> int:
        """SIGINT, as Ctrl-C would: the bot finishes what is in flight and exits."""
        self.sample()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while self.proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)  # keep the fake server serving the bot's last calls
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.exit_code = self.proc.returncode
        return self.exit_code


def bot_env(api: FakeTelegram, model: Path, **settings: str) -> dict[str, str]:
    """Every setting the bot reads, pinned, so a developer's environment cannot change the run
    (the bot also runs in an empty folder, so no .env is read)."""
    return {
        "TELEGRAM_BOT_TOKEN": api.token,
        "TELEGRAM_BASE_URL": api.base_url,
        "TELEGRAM_BASE_FILE_URL": api.base_file_url,
        "MODEL_PATH": str(model.resolve()),
        "THRESHOLD": "",
        "SHOW_CONFIDENCE": "true",
        "ALLOWED_CHAT_IDS": "",
        "BATCH_SIZE": "",
        "BATCH_WAIT_MS": "",
        "QUEUE_SIZE": "",
        "WORKER_THREADS": "",
        "DECODE_THREADS": "",
        "MEMORY_BUDGET_MB": "",
        "MAX_FILE_MB": "",
        "ONNX_THREADS": "",
        "RUNTIME": "",
        "OUTSIDER_REPLY_MINUTES": "",
        "LOG_LEVEL": "INFO",
        "WEBHOOK_URL": "",
        **settings,
    }


def start_bot(
    api: FakeTelegram, model: Path, module: str = "nothotdog.bot", **settings: str
) -> BotProcess:
    """Start ``python -m module`` (``nothotdog.bot``, or ``bench.botproc`` without the send cap)."""
    workdir = Path(tempfile.mkdtemp(prefix="nothotdog-bot-"))
    log_path = workdir / "bot.log"
    env = bot_env(api, model, **settings)
    log = log_path.open("wb")
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", module], cwd=workdir, env=child_env(**env),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    shown = {k: v for k, v in settings.items() if v}
    return BotProcess(proc, log_path, started, module, shown)


async def wait_ready(api: FakeTelegram, bot: BotProcess, timeout: float = READY_TIMEOUT_S) -> None:
    """Until the bot polls getUpdates; fails fast, with its log, if it exits instead."""
    deadline = time.monotonic() + timeout
    while not api.calls_to("getUpdates"):
        if bot.proc.poll() is not None:
            raise RuntimeError(f"the bot exited with {bot.proc.returncode}:\n{bot.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the bot did not start polling in {timeout:.0f}s:\n"
                               f"{bot.log_tail()}")
        await asyncio.sleep(0.02)


def is_verdict(text: str) -> bool:
    return text.startswith(VERDICT_PREFIXES)
