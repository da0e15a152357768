"""What goes into the pipeline and what comes out: plain values, no Telegram types.

Handlers make a :class:`Photo` from a message; the pipeline returns a :class:`Judged` (the
verdict, and for ``/why`` the picture) or a :class:`Refused` with its reason; replies and
metrics read them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from nothotdog.bot.classifier import Verdict


@dataclass(frozen=True)
class Photo:
    """A file to judge, as Telegram describes it before anything is downloaded."""

    file_id: str
    size: int | None = None  # as declared; None when Telegram did not say
    preview: Photo | None = None  # Telegram's thumbnail of an image document
    unique_id: str = ""  # the same for every bot and over time (file_id is neither)


@dataclass(frozen=True)
class Judged:
    verdict: Verdict
    from_preview: bool = False  # judged from Telegram's preview of a file over MAX_FILE_MB
    nbytes: int = 0  # the file's size
    wait_s: float = 0.0  # in line for a place and memory
    download_s: float = 0.0
    decode_s: float = 0.0
    infer_s: float = 0.0
    started: float = 0.0  # perf_counter when the photo arrived, waiting in line included
    picture: bytes | None = None  # /why: the photo with its heatmap, as a JPEG
    features: np.ndarray | None = None  # when asked for: the model's features (bot.taught)


class Refusal(enum.StrEnum):
    BUSY = "busy"  # the line was full, or the wait would have been too long
    UNREADABLE = "unreadable"  # not an image, damaged, or too many pixels
    TOO_LARGE = "too_large"  # over MAX_FILE_MB (or Telegram's 20 MB) with no preview


@dataclass(frozen=True)
class Refused:
    reason: Refusal
    detail: str = ""  # unreadable: what is wrong, in words safe to show a user
    size: int | None = None  # too large: the file's size, when known


Outcome = Judged | Refused
