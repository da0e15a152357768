"""Fixtures: a tiny real model, the fake Bot API server, and the real bot pointed at it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from telegram.ext import Application

from nothotdog.bot.app import build_application
from nothotdog.bot.classifier import load_model
from nothotdog.bot.settings import Settings
from nothotdog.contract.runtime import OnnxModel
from tests.bot.harness import running
from tests.fakebot import FakeTelegram
from tests.tinymodel import build_tiny_model

StartBot = Callable[..., Awaitable[Application]]


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny.onnx")


@pytest.fixture(scope="session")
def tiny_model(tiny_model_path: Path) -> OnnxModel:
    return load_model(tiny_model_path, onnx_threads=1)


@pytest.fixture(scope="session")
def heatmap_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with the optional ``heatmap`` output, as exports now have it."""
    return build_tiny_model(tmp_path_factory.mktemp("model") / "tiny-heatmap.onnx", heatmap=True)


@pytest.fixture(scope="session")
def heatmap_model(heatmap_model_path: Path) -> OnnxModel:
    return load_model(heatmap_model_path, onnx_threads=1)


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as api:
        yield api


@pytest.fixture
def settings(telegram: FakeTelegram, tiny_model_path: Path, tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path}/votes.sqlite3",
        token=telegram.token,
        model_path=tiny_model_path,
        base_url=telegram.base_url,
        base_file_url=telegram.base_file_url,
        worker_threads=2,
        album_wait_s=0.2,  # the default 1.5 s would only slow the tests down
    )


@pytest.fixture
async def start_bot(settings: Settings, tiny_model: OnnxModel) -> AsyncIterator[StartBot]:
    """``await start_bot(**setting_overrides)``: the real Application, polling the fake server;
    ``model=`` runs another model than the tiny one."""
    async with contextlib.AsyncExitStack() as stack:

        async def start(
            webhook: dict[str, Any] | None = None, model: OnnxModel | None = None, **overrides: Any
        ) -> Application:
            app = build_application(
                settings.model_copy(update=overrides), model=model or tiny_model
            )
            return await stack.enter_async_context(running(app, webhook=webhook))

        yield start


@pytest.fixture
async def bot(start_bot: StartBot) -> Application:
    return await start_bot()
