"""A chat's taught photos, kept in the feedback database beside the votes (``DATABASE_URL``).

What is kept, and nothing more: for each photo taught with ``/teach``, its features (the
model's 512 pooled numbers, float32: not the photo, which cannot be rebuilt from them), its
label, the model version that computed them, a salted hash of the chat and of the person who
sent it (the votes' salt: ``/forget`` finds them, nobody reads ids back) and the time; per
chat, the label being taught and by whom, and whether the chat's labels answer its photos.
Rows exist only once someone teaches: ``/teach`` is the opt-in. ``/reset`` deletes a chat's,
``/forget`` a person's.

Every replica reads the same rows, so each answers with the chat's labels; a chat's
``revision`` grows with every change, so a replica rebuilds its classifier only then.
Blocking calls, run in a thread by the caller (``FeedbackStore.run``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from nothotdog.bot.feedback import FeedbackStore, StoreError

metadata = MetaData()
examples = Table(
    "nothotdog_examples", metadata,
    Column("id", Integer, primary_key=True),
    Column("chat_hash", String(64), nullable=False, index=True),
    Column("label", String(64), nullable=False),
    Column("features", LargeBinary, nullable=False),  # float32, little-endian
    Column("model_version", String(128), nullable=False),  # features of another model differ
    Column("user_hash", String(64), nullable=False, index=True),
    Column("taught_at", DateTime(timezone=True), nullable=False),
)  # fmt: skip
chats = Table(
    "nothotdog_chats", metadata,
    Column("chat_hash", String(64), primary_key=True),
    Column("teaching", String(64)),  # the label photos are examples of; None: not teaching
    Column("teacher_hash", String(64)),  # whose photos those are: who sent /teach
    Column("live", Boolean, nullable=False),  # /done: the chat's labels answer its photos
    Column("revision", Integer, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
)  # fmt: skip
FLOAT = np.dtype("<f4")


@dataclass(frozen=True)
class ChatState:
    teaching: str | None
    teacher_hash: str | None
    live: bool
    revision: int


class ExampleStore:
    """The two tables, on the feedback store's engine and salt."""

    def __init__(self, feedback: FeedbackStore, model_version: str) -> None:
        self.feedback = feedback
        self.engine = feedback.engine
        self.model_version = model_version
        self._opened = False

    def open(self) -> None:
        if self._opened:
            return
        self.feedback.open()
        try:
            metadata.create_all(self.engine)
        except StoreError:  # another replica created them meanwhile: they are there now
            metadata.create_all(self.engine)
        self._opened = True

    def key(self, chat_or_user_id: int) -> str:
        """The salted hash stored for a chat or a person (a private chat's id is its user's)."""
        self.open()
        return self.feedback.user_hash(chat_or_user_id)

    def state(self, chat_id: int) -> ChatState | None:
        """The chat's teaching state; None for a chat that never taught (nearly all)."""
        with self.engine.connect() as db:
            row = db.execute(select(chats).where(chats.c.chat_hash == self.key(chat_id))).first()
        if row is None:
            return None
        return ChatState(row.teaching, row.teacher_hash, row.live, row.revision)

    def counts(self, chat_id: int) -> dict[str, int]:
        """Photos per label (this model's), in the order the labels were first taught."""
        with self.engine.connect() as db:
            return self._counts(db, chat_id)

    def _counts(self, db: Connection, chat_id: int) -> dict[str, int]:
        query = (select(examples.c.label, func.count(), func.min(examples.c.id))
                 .where(*self._mine(chat_id)).group_by(examples.c.label))  # fmt: skip
        rows = sorted(db.execute(query).all(), key=lambda row: row[2])
        return {label: int(n) for label, n, _ in rows}

    def vectors(self, chat_id: int) -> dict[str, np.ndarray]:
        """Each label's features, ``[n, channels]``, in the order of :meth:`counts`."""
        query = select(examples.c.label, examples.c.features).where(*self._mine(chat_id))
        found: dict[str, list[np.ndarray]] = {}
        with self.engine.connect() as db:
            for label, blob in db.execute(query.order_by(examples.c.id)):
                found.setdefault(label, []).append(np.frombuffer(blob, FLOAT))
        return {label: np.stack(rows) for label, rows in found.items()}

    def teach(self, chat_id: int, user_id: int, label: str, most: int) -> dict[str, int]:
        """From now on ``user_id``'s photos in the chat are examples of ``label``, unless it
        is new and the chat has ``most`` labels already; the counts, with ``label`` in them
        if it is taught now. Examples another model computed are deleted: they mean nothing
        to this one."""
        chat = self.key(chat_id)
        with self.engine.begin() as db:
            db.execute(delete(examples).where(examples.c.chat_hash == chat,
                                              examples.c.model_version != self.model_version))
            counts = self._counts(db, chat_id)
            if label not in counts and len(counts) >= most:
                return counts
            self._change(db, chat, teaching=label, teacher_hash=self.key(user_id))
        return {**counts, label: counts.get(label, 0)}

    def add(self, chat_id: int, user_id: int, label: str, features: np.ndarray,
            most: int) -> int | None:  # fmt: skip
        """Keep one photo's features; the label's count after it, or None when it had
        ``most`` already."""
        chat = self.key(chat_id)
        with self.engine.begin() as db:
            n = db.scalar(select(func.count()).where(*self._mine(chat_id),
                                                     examples.c.label == label)) or 0
            if n >= most:
                return None
            db.execute(examples.insert().values(
                chat_hash=chat, label=label, features=np.asarray(features, FLOAT).tobytes(),
                model_version=self.model_version, user_hash=self.key(user_id),
                taught_at=dt.datetime.now(dt.UTC)))  # fmt: skip
            self._change(db, chat)
        return n + 1

    def finish(self, chat_id: int, live: bool) -> bool:
        """Teaching ends; the chat's labels answer its photos from now on if ``live``."""
        with self.engine.begin() as db:
            self._change(db, self.key(chat_id), teaching=None, teacher_hash=None, live=live)
        return live

    def reset(self, chat_id: int) -> int:
        """Delete the chat's examples and state; how many photos there were."""
        chat = self.key(chat_id)
        with self.engine.begin() as db:
            deleted = db.execute(delete(examples).where(examples.c.chat_hash == chat)).rowcount
            db.execute(delete(chats).where(chats.c.chat_hash == chat))
        return deleted

    def forget(self, user_id: int) -> int:
        """Delete every photo ``user_id`` taught, in any chat; how many there were."""
        person = self.key(user_id)
        with self.engine.begin() as db:
            touched = db.scalars(select(examples.c.chat_hash).distinct()
                                 .where(examples.c.user_hash == person)).all()  # fmt: skip
            deleted = db.execute(delete(examples).where(examples.c.user_hash == person)).rowcount
            db.execute(update(chats).where(chats.c.teacher_hash == person)
                       .values(teaching=None, teacher_hash=None))  # fmt: skip
            for chat in touched:
                self._change(db, chat)
        return deleted

    def _mine(self, chat_id: int) -> tuple:
        return (examples.c.chat_hash == self.key(chat_id),
                examples.c.model_version == self.model_version)  # fmt: skip

    @staticmethod
    def _change(db: Connection, chat: str, **values: object) -> None:
        """Update the chat's row (made if need be) and move its revision on."""
        now = dt.datetime.now(dt.UTC)
        changed = db.execute(update(chats).where(chats.c.chat_hash == chat).values(
            revision=chats.c.revision + 1, changed_at=now, **values)).rowcount  # fmt: skip
        if changed:
            return
        row = {"teaching": None, "teacher_hash": None, "live": False, **values}
        try:
            with db.begin_nested():  # a replica may make the same row at the same moment
                db.execute(chats.insert().values(chat_hash=chat, revision=1, changed_at=now,
                                                 **row))  # fmt: skip
        except IntegrityError:
            db.execute(update(chats).where(chats.c.chat_hash == chat).values(
                revision=chats.c.revision + 1, changed_at=now, **values))  # fmt: skip
