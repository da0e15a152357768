"""Which file in a Telegram message to judge (a photo's fitting size, or an image document),
and the shape of the one call that judges it for every handler (:class:`Judge`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath
from typing import Protocol

from telegram import Document, Message, PhotoSize, Update
from telegram.ext import filters

from nothotdog.bot.outcomes import Outcome, Photo
from nothotdog.contract.layout import IMAGE_SUFFIXES

# Vector drawings are "image/*" too, but Pillow cannot read them: told so without a download.
VECTOR_MIME_TYPES = frozenset({"image/svg+xml"})


def is_image_document(document: Document) -> bool:
    """By MIME type, or by extension when a client sent a generic type for an image."""
    mime = (document.mime_type or "").lower()
    if mime in VECTOR_MIME_TYPES:
        return False
    if mime.startswith("image/"):
        return True
    return PurePath((document.file_name or "").lower()).suffix in IMAGE_SUFFIXES


class _ImageDocument(filters.MessageFilter):
    def filter(self, message: Message) -> bool:
        return message.document is not None and is_image_document(message.document)


IMAGE_DOCUMENT = _ImageDocument(name="IMAGE_DOCUMENT")


def pick_photo_size(sizes: Sequence[PhotoSize], min_side: int) -> PhotoSize:
    """The smallest size whose shorter side still covers ``min_side``, else the largest.

    Telegram sends each photo in several sizes; downloading and decoding a 1280 px JPEG to
    shrink it to 224 px wastes time when a 320 px one is there.
    """
    adequate = [s for s in sizes if min(s.width, s.height) >= min_side]
    if adequate:
        return min(adequate, key=lambda s: s.width * s.height)
    return max(sizes, key=lambda s: s.width * s.height)


def photo_in(message: Message | None, min_side: int) -> Photo | None:
    """The file to judge in ``message``: a photo's fitting size, or an image document (with
    Telegram's preview, used when the file is over MAX_FILE_MB)."""
    if message is None:
        return None
    if message.photo:
        size = pick_photo_size(message.photo, min_side)
        return Photo(size.file_id, size.file_size, unique_id=size.file_unique_id)
    document = message.document
    if document is None or not is_image_document(document):
        return None
    thumb = document.thumbnail
    preview = Photo(thumb.file_id, thumb.file_size) if thumb is not None else None
    return Photo(document.file_id, document.file_size, preview, document.file_unique_id)


class Judge(Protocol):
    """The pipeline's outcome for ``photo`` (sent in ``message``), logged and counted: every
    verdict goes through one of these, whichever handler asked for it."""

    async def __call__(self, update: Update, message: Message, photo: Photo, source: str, *,
                       picture: bool = False, features: bool = False) -> Outcome: ...  # fmt: skip
