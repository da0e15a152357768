"""Two bot replicas keep their votes in one real PostgreSQL server (Debian's ``postgresql``),
started by this test on 127.0.0.1; one export holds the votes given to both, and a chat's
own labels taught on either answer on both.

The replicas run in webhook mode, as they would behind nginx; the fake Bot API server delivers
each update to the replica the test points it at. Skips only where PostgreSQL is not
installed; .ci/run installs it.
"""

from __future__ import annotations

import asyncio
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from nothotdog.bot import replies, teach_replies
from nothotdog.bot.__main__ import webhook_options
from nothotdog.bot.cli import main as cli_main
from nothotdog.bot.settings import Settings
from nothotdog.bot.taught import MIN_PHOTOS
from nothotdog.contract.runtime import OnnxModel
from tests.bot.conftest import StartBot
from tests.bot.test_feedback import press, rows, verdict_for
from tests.bot.test_teach import BLUE, command, photo, teach
from tests.fakebot import FakeTelegram
from tests.imagefiles import GREEN, RED, RED_TEXT, solid
from tests.ports import free_port


def _postgres_bin() -> Path | None:
    found = shutil.which("pg_ctl") or next(iter(sorted(glob.glob(
        "/usr/lib/postgresql/*/bin/pg_ctl"))), None)  # fmt: skip
    return Path(found).parent if found else None


BIN = _postgres_bin()
pytestmark = pytest.mark.skipif(
    BIN is None,
    reason="PostgreSQL is not installed here (apt-get install postgresql; .ci/run does it "
    "where it can)",
)


@pytest.fixture
def postgres() -> Iterator[str]:
    """A throw-away PostgreSQL cluster on 127.0.0.1, as the ``postgres`` user when run as root
    (PostgreSQL refuses to run as root); its SQLAlchemy URL. Its folder is outside pytest's
    (which only root may enter), and removed afterwards."""
    assert BIN is not None
    folder, port = Path(tempfile.mkdtemp(prefix="nothotdog-pg-")), free_port()
    data = folder / "pg"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, timeout=120)

    try:
        run(str(BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres")
        run(str(BIN / "pg_ctl"), "-D", str(data), "-l", str(folder / "pg.log"), "-w", "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1", "start")  # fmt: skip
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(str(BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


async def two_replicas(start_bot: StartBot, postgres: str) -> list[str]:
    """Two bots in webhook mode on one database; their webhook URLs."""
    urls = []
    for _ in range(2):
        port = free_port()
        urls.append(f"http://127.0.0.1:{port}/hook")
        webhook = Settings(webhook_url=urls[-1], webhook_listen="127.0.0.1", webhook_port=port)
        await start_bot(webhook=webhook_options(webhook, "s3cret"), database_url=postgres)
    return urls


async def test_two_replicas_one_database_one_export(
    telegram: FakeTelegram, start_bot: StartBot, heatmap_model: OnnxModel, postgres: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    urls = await two_replicas(start_bot, postgres)
    verdicts = []
    for i, url in enumerate(urls):  # each replica takes one photo and its vote
        assert telegram.webhook is not None
        telegram.webhook["url"] = url
        verdicts.append(await verdict_for(telegram, GREEN))
        assert await press(telegram, verdicts[-1], "vote:right", user_id=100 + i) == (
            replies.vote_thanks())
    assert len({r["file_unique_id"] for r in rows(postgres)}) == 2

    monkeypatch.setenv("DATABASE_URL", postgres)
    for name, value in (("TELEGRAM_BOT_TOKEN", telegram.token),
                        ("TELEGRAM_BASE_URL", telegram.base_url),
                        ("TELEGRAM_BASE_FILE_URL", telegram.base_file_url)):  # fmt: skip
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "export"
    assert await asyncio.to_thread(cli_main, ["feedback", "export", str(out)]) == 0
    exported = sorted(p.relative_to(out).parts[0] for p in out.rglob("feedback__*"))
    assert exported == ["not_hot_dog", "not_hot_dog"]


async def test_two_replicas_answer_with_the_labels_taught_on_either(
    telegram: FakeTelegram, start_bot: StartBot, postgres: str
) -> None:
    """A chat taught half on one replica and half on the other: both answer with its labels,
    and a /reset on one sends both back to hot dog."""
    urls = await two_replicas(start_bot, postgres)

    def to(replica: int) -> None:
        assert telegram.webhook is not None
        telegram.webhook["url"] = urls[replica]

    to(0)
    await teach(telegram, "tomato", RED, MIN_PHOTOS)
    to(1)
    await teach(telegram, "sky", BLUE, MIN_PHOTOS)
    to(0)
    assert (await command(telegram, "/done")).startswith("🎓 Done!")
    for replica in (1, 0):
        to(replica)
        assert (await photo(telegram, solid(RED))).startswith("🏷 tomato (")
        assert (await photo(telegram, solid(BLUE))).startswith("🏷 sky (")
    to(1)
    assert await command(telegram, "/reset") == teach_replies.reset(2 * MIN_PHOTOS)
    to(0)
    assert await photo(telegram, solid(RED)) == RED_TEXT
