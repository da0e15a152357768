"""Which file in a Telegram message to judge (a photo's fitting size, an image document, a
sticker, or the preview of a GIF or video), and the shape of the one call that judges it for
every handler (:class:`Judge`)."""

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
# Stickers, GIFs (Telegram turns them into MP4 animations), videos and round video notes. A
# static sticker is a WebP image, judged itself; the others are judged on the preview picture
# Telegram sends with them: decoding video would cost far more than a verdict is worth.
MOVING = filters.Sticker.ALL | filters.ANIMATION | filters.VIDEO | filters.VIDEO_NOTE
# What a message holds, in the order it is looked at: an animation also carries a document.
KINDS = ("photo", "sticker", "animation", "video", "video_note", "document")


def pick_photo_size(sizes: Sequence[PhotoSize], min_side: int) -> PhotoSize:
    """The smallest size whose shorter side still covers ``min_side``, else the largest.

    Telegram sends each photo in several sizes; downloading and decoding a 1280 px JPEG to
    shrink it to 224 px wastes time when a 320 px one is there.
    """
    adequate = [s for s in sizes if min(s.width, s.height) >= min_side]
    if adequate:
        return min(adequate, key=lambda s: s.width * s.height)
    return max(sizes, key=lambda s: s.width * s.height)


def kind_of(message: Message) -> str | None:
    """What ``message`` holds, as one of KINDS (None: none of them)."""
    return next((kind for kind in KINDS if getattr(message, kind)), None)


def without_preview(message: Message | None) -> bool:
    """A GIF, video or moving sticker that came without the preview picture it is judged on."""
    return (message is not None and kind_of(message) not in (None, "photo", "document")
            and photo_in(message, 0) is None)  # fmt: skip


def photo_in(message: Message | None, min_side: int) -> Photo | None:
    """The file to judge in ``message``: a photo's fitting size, an image document or static
    sticker (with Telegram's preview, used when the file is over MAX_FILE_MB), or the preview
    of a GIF, video or moving sticker (None when it has none)."""
    if message is None:
        return None
    if message.photo:
        size = pick_photo_size(message.photo, min_side)
        return Photo(size.file_id, size.file_size, unique_id=size.file_unique_id)
    sticker = message.sticker
    if sticker is not None and not (sticker.is_animated or sticker.is_video):
        return Photo(sticker.file_id, sticker.file_size, _preview(sticker.thumbnail),
                     sticker.file_unique_id)  # fmt: skip
    moving = message.animation or message.video or message.video_note or sticker
    if moving is not None:
        thumb = moving.thumbnail
        if thumb is None:
            return None
        return Photo(thumb.file_id, thumb.file_size, unique_id=thumb.file_unique_id)
    document = message.document
    if document is None or not is_image_document(document):
        return None
    return Photo(document.file_id, document.file_size, _preview(document.thumbnail),
                 document.file_unique_id)  # fmt: skip


def _preview(thumb: PhotoSize | None) -> Photo | None:
    return Photo(thumb.file_id, thumb.file_size) if thumb is not None else None


class Judge(Protocol):
    """The pipeline's outcome for ``photo`` (sent in ``message``), logged and counted: every
    verdict goes through one of these, whichever handler asked for it."""

    async def __call__(self, update: Update, message: Message, photo: Photo, source: str, *,
                       picture: bool = False, features: bool = False) -> Outcome: ...  # fmt: skip
