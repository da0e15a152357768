"""/healthz and /metrics: off by default; when on, they tell what the real bot just did."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from nothotdog.bot import replies
from nothotdog.bot.app import build_application, parts_of
from nothotdog.bot.health import main as health_main
from nothotdog.bot.health import probe
from nothotdog.bot.settings import Settings, SettingsError, load_settings
from nothotdog.contract.layout import MB
from nothotdog.contract.runtime import OnnxModel
from tests.bot.conftest import StartBot
from tests.bot.harness import REPO, SETTING_NAMES, running
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, GREEN_TEXT, RED, RED_TEXT, solid
from tests.ports import free_port


async def _get(url: str) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as client, client.get(url) as response:
        return response.status, response.headers["Content-Type"], await response.text()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by name and sorted labels."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_off_by_default_and_on_loopback_when_on() -> None:
    assert Settings().health_port is None
    settings = load_settings(environ={"HEALTH_PORT": "9102"}, env_file=None)
    assert (settings.health_port, settings.health_listen) == (9102, "127.0.0.1")
    for bad in ("0", "http"):
        with pytest.raises(SettingsError, match="HEALTH_PORT"):
            load_settings(environ={"HEALTH_PORT": bad}, env_file=None)


async def test_no_health_server_unless_asked(settings: Settings, tiny_model: OnnxModel) -> None:
    app = build_application(settings, model=tiny_model)
    assert parts_of(app).health is None


async def test_metrics_count_what_the_bot_answered(
    telegram: FakeTelegram, start_bot: StartBot
) -> None:
    port = free_port()
    await start_bot(health_port=port)
    telegram.fail("getFile", status=400, description="Bad Request: wrong file_id")
    failing = telegram.push_photo(solid(RED))
    assert await telegram.reply_text(failing) == replies.failed()
    red, green = telegram.push_photo(solid(RED)), telegram.push_photo(solid(GREEN))
    garbage = telegram.push_document(b"\x89PNG not really", file_name="x.png")
    huge = telegram.push_document(solid(RED), file_name="huge.png", declared_size=40 << 20)
    assert await telegram.reply_text(red) == RED_TEXT
    assert await telegram.reply_text(green) == GREEN_TEXT
    assert await telegram.reply_text(garbage) == replies.unreadable(
        "the file is not an image I can read, or it is damaged"
    )
    assert await telegram.reply_text(huge) == replies.too_large(40 << 20)

    status, content_type, text = await _get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200 and content_type.startswith("text/plain; version=")
    found = samples(text)
    assert found[("nothotdog_photos_answered_total", (("verdict", "hot_dog"),))] == 1
    assert found[("nothotdog_photos_answered_total", (("verdict", "not_hot_dog"),))] == 1
    assert found[("nothotdog_unreadable_inputs_total", ())] == 1
    assert found[("nothotdog_too_large_refusals_total", ())] == 1
    assert found[("nothotdog_errors_total", ())] == 1
    assert found[("nothotdog_busy_refusals_total", ())] == 0
    assert found[("nothotdog_photos_in_flight", ())] == 0
    for stage in ("download", "classify", "total"):
        assert found[(f"nothotdog_{stage}_seconds_count", ())] == 2
        assert found[(f"nothotdog_{stage}_seconds_sum", ())] > 0
    info = (("name", "tiny-redness"), ("version", "test-1"))
    assert found[("nothotdog_model_info", info)] == 1


async def test_busy_refusals_are_counted(telegram: FakeTelegram, start_bot: StartBot) -> None:
    port = free_port()
    app = await start_bot(health_port=port, queue_size=1, max_wait_s=0)
    telegram.slow("file", seconds=0.3)  # the first photo holds the only place a while
    messages = [telegram.push_photo(solid(RED), chat=telegram.private_chat(i)) for i in range(4)]
    texts = [await telegram.reply_text(m) for m in messages]
    busy = texts.count(replies.busy())
    assert busy >= 1 and texts.count(RED_TEXT) == 4 - busy
    _, _, text = await _get(f"http://127.0.0.1:{port}/metrics")
    assert samples(text)[("nothotdog_busy_refusals_total", ())] == busy
    assert parts_of(app).health.port == port


async def test_healthz_answers_while_the_bot_runs_and_not_after(
    telegram: FakeTelegram,
    settings: Settings,
    tiny_model: OnnxModel,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    port = free_port()
    app = build_application(settings.model_copy(update={"health_port": port}), model=tiny_model)
    async with running(app):
        status, content_type, text = await _get(f"http://127.0.0.1:{port}/healthz")
        assert status == 200 and content_type == "application/json"
        assert '"status": "ok"' in text and "tiny-redness" in text
        # Blocking calls, as the HEALTHCHECK makes them: in a thread, so this loop can answer.
        assert await asyncio.to_thread(probe, "127.0.0.1", port)
        assert await asyncio.to_thread(probe, "0.0.0.0", port)
        # The container's HEALTHCHECK: python -m nothotdog.bot.health, reading HEALTH_PORT.
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("HEALTH_PORT", str(port))
        monkeypatch.delenv("HEALTH_LISTEN", raising=False)
        assert await asyncio.to_thread(health_main) == 0
    assert not probe("127.0.0.1", port)
    assert health_main() == 1
    monkeypatch.delenv("HEALTH_PORT")
    assert health_main() == 1


async def test_a_taken_health_port_stops_startup_with_a_clear_message(
    telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {
            **{k: v for k, v in os.environ.items() if k not in SETTING_NAMES},
            "PYTHONPATH": str(REPO),
            "TELEGRAM_BOT_TOKEN": telegram.token,
            "TELEGRAM_BASE_URL": telegram.base_url,
            "TELEGRAM_BASE_FILE_URL": telegram.base_file_url,
            "MODEL_PATH": str(tiny_model_path),
            "HEALTH_PORT": str(taken.getsockname()[1]),
        }
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "nothotdog.bot", cwd=tmp_path, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), timeout=30)
    assert proc.returncode == 2, err.decode()
    assert "HEALTH_PORT" in err.decode() and "already in use" in err.decode()
    assert "Traceback" not in err.decode()


async def test_metrics_follow_the_byte_budget_and_why(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel
) -> None:
    """Bytes held in the budget while a file is in flight; /why refused busy (no waiting
    allowed here) and sent, counted like verdicts."""
    port = free_port()
    await start_bot(model=heatmap_model, health_port=port, memory_budget_mb=24, max_file_mb=10,
                    max_wait_s=0)
    url = f"http://127.0.0.1:{port}/metrics"
    telegram.can_read_all_group_messages = False
    group = FakeTelegram.group_chat()
    telegram.slow("getFile", seconds=3)
    first = telegram.push_document(solid(RED, fmt="PNG"), file_name="a.png", declared_size=10 * MB)
    await telegram.wait_until(lambda: len(telegram.calls_to("getFile")) == 1)
    found = samples((await _get(url))[2])
    assert found[("nothotdog_bytes_in_flight", ())] >= 10 * MB
    assert found[("nothotdog_memory_budget_bytes", ())] == 24 * MB
    assert found[("nothotdog_photos_in_flight", ())] == 1
    assert found[("nothotdog_photos_waiting", ())] == 0
    document = telegram.push_document(solid(RED, fmt="PNG"), group, file_name="b.png",
                                      declared_size=8 * MB)
    telegram.push_command("/why", group, reply_to=document)
    assert await telegram.reply_text(document, timeout=30) == replies.busy()
    assert await telegram.reply_text(first, timeout=30) == RED_TEXT
    telegram.push_command("/why", group, reply_to=document)
    await telegram.wait_until(lambda: bool(telegram.calls_to("sendPhoto")))
    await telegram.quiet(0.3)
    found = samples((await _get(url))[2])
    assert found[("nothotdog_busy_refusals_total", ())] == 1
    assert found[("nothotdog_heatmaps_sent_total", ())] == 1
    assert found[("nothotdog_photos_answered_total", (("verdict", "hot_dog"),))] == 1
    assert found[("nothotdog_bytes_in_flight", ())] == 0
    assert found[("nothotdog_photos_in_flight", ())] == 0
