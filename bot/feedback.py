"""Users' answers to "Was I right?": one table behind ``DATABASE_URL``, through SQLAlchemy.

What a vote keeps, and nothing more: the photo's Telegram ids (never its bytes), the chat type,
a salted hash of the voter (the salt is made once and kept in the same database, so
``/forget`` can find a voter's rows and nobody can read ids back from them), the model's name
and version, its P(positive) and verdict, the vote, the label it implies, and the time. Rows
are written only when someone votes: that press is the opt-in.

The default is an SQLite file; several replicas share one PostgreSQL server. Every call is
blocking (the driver is), so the bot runs them in a thread (:meth:`FeedbackStore.run`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    delete,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

T = TypeVar("T")

SCHEMA_VERSION = "1"
StoreError = SQLAlchemyError  # the one kind of failure callers handle: "couldn't save that"

metadata = MetaData()
meta = Table(
    "nothotdog_meta", metadata,
    Column("key", String(32), primary_key=True),
    Column("value", String(128), nullable=False),
)  # fmt: skip
votes = Table(
    "nothotdog_votes", metadata,
    Column("id", Integer, primary_key=True),
    Column("file_unique_id", String(128), nullable=False, index=True),
    Column("file_id", String(256), nullable=False),
    Column("chat_type", String(16), nullable=False),
    Column("user_hash", String(64), nullable=False, index=True),
    Column("model_name", String(128), nullable=False),
    Column("model_version", String(128), nullable=False),
    Column("p_positive", Float, nullable=False),
    Column("verdict", String(64), nullable=False),
    Column("right", Boolean, nullable=False),  # the user's answer: was the verdict right?
    Column("label", String(64)),  # the label the vote implies; None when it can't tell
    Column("voted_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("user_hash", "file_unique_id"),  # one vote per user per photo
)  # fmt: skip


@dataclass(frozen=True)
class Vote:
    file_unique_id: str
    file_id: str
    chat_type: str
    user_id: int  # hashed before it is stored
    model_name: str
    model_version: str
    p_positive: float
    verdict: str
    right: bool
    label: str | None


class FeedbackStore:
    """The votes table; the schema and the salt are made on first use."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url)
        if self.url.get_backend_name() == "sqlite" and self.url.database:
            Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
        self.engine: Engine = create_engine(self.url, pool_pre_ping=True)
        self._salt: str | None = None

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` in a thread: a database call never blocks the event loop."""
        return await asyncio.to_thread(fn, *args)

    def open(self) -> None:
        """Create the tables and the salt if they are not there yet (replicas may race)."""
        if self._salt is not None:
            return
        metadata.create_all(self.engine)
        for key, value in (("schema_version", SCHEMA_VERSION), ("salt", secrets.token_hex(32))):
            try:
                with self.engine.begin() as db:
                    db.execute(meta.insert().values(key=key, value=value))
            except IntegrityError:
                pass  # made by an earlier start or by another replica: theirs is kept
        with self.engine.connect() as db:
            version = db.scalar(select(meta.c.value).where(meta.c.key == "schema_version"))
            if version != SCHEMA_VERSION:
                raise StoreError(f"the database has schema {version}, this bot {SCHEMA_VERSION}")
            self._salt = db.scalar(select(meta.c.value).where(meta.c.key == "salt"))

    def user_hash(self, user_id: int) -> str:
        self.open()
        return hashlib.sha256(f"{self._salt}:{user_id}".encode()).hexdigest()

    def save(self, vote: Vote) -> tuple[int, int]:
        """Keep ``vote`` (a second vote of the same user on the same photo replaces the first);
        returns the photo's (right, wrong) votes so far."""
        row = {
            "file_unique_id": vote.file_unique_id, "file_id": vote.file_id,
            "chat_type": vote.chat_type, "user_hash": self.user_hash(vote.user_id),
            "model_name": vote.model_name, "model_version": vote.model_version,
            "p_positive": vote.p_positive, "verdict": vote.verdict, "right": vote.right,
            "label": vote.label, "voted_at": dt.datetime.now(dt.UTC),
        }  # fmt: skip
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        upsert = dialect.insert(votes).values(**row)
        upsert = upsert.on_conflict_do_update(
            index_elements=["user_hash", "file_unique_id"],
            set_={k: upsert.excluded[k] for k in ("right", "label", "voted_at", "file_id")},
        )
        with self.engine.begin() as db:
            db.execute(upsert)
            counts = dict(db.execute(
                select(votes.c.right, func.count()).where(
                    votes.c.file_unique_id == vote.file_unique_id).group_by(votes.c.right)
            ).all())  # fmt: skip
        return counts.get(True, 0), counts.get(False, 0)

    def forget(self, user_id: int) -> int:
        """Delete every vote of ``user_id``; how many there were."""
        with self.engine.begin() as db:
            return db.execute(delete(votes).where(votes.c.user_hash == self.user_hash(user_id))
                              ).rowcount  # fmt: skip

    def labelled(self) -> list[tuple[str, str, str]]:
        """(file_unique_id, file_id, label) for each photo whose voters' majority names a label;
        ties are left out."""
        self.open()
        with self.engine.connect() as db:
            rows = db.execute(select(votes.c.file_unique_id, votes.c.file_id, votes.c.label)
                              .where(votes.c.label.is_not(None))).all()  # fmt: skip
        tally: dict[str, dict[str, int]] = {}
        file_ids: dict[str, str] = {}
        for unique_id, file_id, label in rows:
            tally.setdefault(unique_id, {}).setdefault(label, 0)
            tally[unique_id][label] += 1
            file_ids[unique_id] = file_id
        out = []
        for unique_id, counts in sorted(tally.items()):
            (first, n), *rest = sorted(counts.items(), key=lambda kv: -kv[1])
            if not rest or rest[0][1] < n:
                out.append((unique_id, file_ids[unique_id], first))
        return out

    def stats(self) -> list[tuple[str, str, str, int, int]]:
        """(model name, version, verdict, votes, votes saying it was right), per group."""
        self.open()
        right = func.sum(func.cast(votes.c.right, Integer))
        query = (select(votes.c.model_name, votes.c.model_version, votes.c.verdict,
                        func.count(), right)
                 .group_by(votes.c.model_name, votes.c.model_version, votes.c.verdict)
                 .order_by(votes.c.model_name, votes.c.model_version, votes.c.verdict))  # fmt: skip
        with self.engine.connect() as db:
            return [(m, v, d, int(n), int(r or 0)) for m, v, d, n, r in db.execute(query)]

    def close(self) -> None:
        self.engine.dispose()
