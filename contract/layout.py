"""Names and sizes every room must agree on: the run folder's files, image suffixes, file limits.

Training writes a run folder, evaluation and export read it, the bot and the CLI accept
images: defined here once so a rename or a new format cannot reach only some of them.
"""

from __future__ import annotations

# A training run folder (``nothotdog-train --out RUN``).
MODEL_FILE = "model.keras"
LABELS_FILE = "labels.json"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.json"
HISTORY_FILE = "history.json"
FILES_FILE = "files.json"  # digests of the images trained on
CONFUSION_PNG = "confusion_matrix.png"
ROC_PNG = "roc_curve.png"
MISTAKES_PNG = "worst_mistakes.png"
HISTORY_PNG = "training_curves.png"

# File suffixes taken as images (lower case, with the dot): data folders, the CLI, documents
# sent to the bot without an image/* MIME type. HEIC needs the ``heif`` extra to decode.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)

MB = 1024 * 1024
TELEGRAM_MAX_FILE_MB = 20  # Bot API getFile refuses bigger files
DEFAULT_MAX_FILE_MB = 10  # the bot's MAX_FILE_MB default
