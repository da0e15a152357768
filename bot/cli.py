"""``nothotdog classify PATH...``: the bot's verdict for files on disk, no Telegram needed;
``nothotdog why PHOTO --out overlay.png``: the picture ``/why`` sends, as a file.

They call the very functions the bot's pipeline calls in its threads (``bot.classifier``), so
a photo gets the same answer here as in a chat, and load no Telegram library.
They read only the settings they use (MODEL_PATH, THRESHOLD, ONNX_THREADS, RUNTIME), checked
as the bot checks them, so a bad bot-only setting in .env does not stop them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from nothotdog.bot import feedback_export, replies
from nothotdog.bot.classifier import (
    PICTURE_SIDE,
    Verdict,
    decode,
    load_model,
    predict,
    why_picture,
    why_unavailable,
)
from nothotdog.bot.feedback import FeedbackStore, StoreError
from nothotdog.bot.settings import (
    SettingsError,
    check_threshold,
    load_model_settings,
    load_settings,
)
from nothotdog.contract import ImageDecodeError
from nothotdog.contract.layout import IMAGE_SUFFIXES
from nothotdog.contract.runtime import ModelLoadError, OnnxModel
from nothotdog.contract.version import add_version

CHUNK = 16  # images per onnxruntime call
HEADER = "path\tlabel\tp_hotdog\tverdict"  # p_hotdog: P(hotdog), what THRESHOLD is compared to
# Any other model: the probability of the label given (the percentage in the verdict, unrounded).
OTHER_HEADER = "path\tlabel\tprobability\tverdict"


def threshold(raw: str) -> float:
    """--threshold, checked like the THRESHOLD setting: a probability in [0, 1]."""
    try:
        value = check_threshold("--threshold", raw)
    except SettingsError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--threshold ")) from None
    if value is None:
        raise argparse.ArgumentTypeError("must be a number between 0 and 1")
    return value


def positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {raw!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="nothotdog",
        description="Hotdog or not hotdog, for image files: the bot's answer without Telegram. "
        "Uses MODEL_PATH, THRESHOLD, ONNX_THREADS and RUNTIME from the environment or ./.env.",
    )
    add_version(parser)
    commands = parser.add_subparsers(dest="command", required=True)
    classify = commands.add_parser(
        "classify",
        help="classify image files, or every image in folders",
        description="Prints a header, then one line per image: path, label, p_hotdog (the "
        "model's P(hotdog), which THRESHOLD is compared with) and the bot's answer, whose "
        "percentage is the confidence in that answer; for a model that is not the hot-dog "
        "model, the third column is the probability of the label. --json adds probability (of "
        "the label) and probabilities (of every label).",
    )
    classify.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    classify.add_argument("--json", action="store_true", help="print one JSON array")
    classify.add_argument("--model", type=Path, help="ONNX model (default: MODEL_PATH setting)")
    classify.add_argument("--threshold", type=threshold,
                          help="say hotdog when P(hotdog) >= this (0..1); default: THRESHOLD "
                          "setting, else the model's")  # fmt: skip
    why = commands.add_parser(
        "why", help="draw where the model saw the hot dog over a photo, as /why does"
    )
    why.add_argument("photo", type=Path, metavar="PHOTO")
    why.add_argument("--out", type=Path, required=True,
                     help="picture to write; PNG, JPEG, ... by its extension")  # fmt: skip
    why.add_argument("--model", type=Path, help="ONNX model (default: MODEL_PATH setting)")
    why.add_argument("--threshold", type=threshold, help="override the model's threshold")
    why.add_argument("--max-side", type=positive_int, default=PICTURE_SIDE,
                     help="longest side of the picture (default %(default)s)")  # fmt: skip
    feedback = commands.add_parser("feedback", help="the users' votes: export or stats",
                                   description="Reads DATABASE_URL, and for export "
                                   "TELEGRAM_BOT_TOKEN and TELEGRAM_BASE_URL/_FILE_URL, as the "
                                   "bot does.")  # fmt: skip
    action = feedback.add_subparsers(dest="action", required=True)
    out = action.add_parser("export", help="download each voted photo into DIR/<label>/, by "
                            "its voters' majority (ties left out)")  # fmt: skip
    out.add_argument("dir", type=Path, metavar="DIR")
    action.add_parser("stats", help="votes and agreement per model version and verdict")
    args = parser.parse_args(argv)
    if args.command == "feedback":
        return feedback_command(args)

    try:
        settings = load_model_settings()
        model = load_model(
            args.model or settings.model_path,
            threshold=args.threshold if args.threshold is not None else settings.threshold,
            onnx_threads=settings.onnx_threads,
            runtime=settings.runtime,
        )
    except (SettingsError, ModelLoadError) as exc:
        print(f"nothotdog: {exc}", file=sys.stderr)
        return 2
    if args.command == "why":
        return draw_why(model, args.photo, args.out, args.max_side)
    files = list(_image_files(args.paths))
    missing = [p for p in args.paths if not p.exists()]
    results = [{"path": str(p), "error": "no such file or folder"} for p in missing]
    results += classify_files(model, files)
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        print(HEADER if replies.is_hotdog(model.spec) else OTHER_HEADER)
        for row in results:
            print(_line(row, model))
    if not files and not missing:
        print("nothotdog: no images found", file=sys.stderr)
        return 1
    return 1 if any("error" in row for row in results) else 0


def feedback_command(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
        store = FeedbackStore(settings.database_url)
        if args.action == "stats":
            print(feedback_export.stats(store))
            return 0
        written, skipped, failed = feedback_export.export(store, settings, args.dir)
    except (SettingsError, StoreError) as exc:
        print(f"nothotdog: {exc}", file=sys.stderr)
        return 2
    print(f"{written} photos written, {skipped} already there, {failed} failed; in {args.dir}")
    return 1 if failed else 0


def draw_why(model: OnnxModel, photo: Path, out: Path, max_side: int) -> int:
    """Write the overlay; 1 when the photo cannot be read, 2 when the model cannot draw it."""
    no_why = why_unavailable(model)
    if no_why is not None:
        print(f"nothotdog: {model.path}: {replies.no_why(no_why)}", file=sys.stderr)
        return 2
    try:
        verdict, picture = why_picture(model, photo.read_bytes(), max_side)
    except (ImageDecodeError, OSError) as exc:
        print(f"nothotdog: {photo}: {exc}", file=sys.stderr)
        return 1
    try:
        picture.save(out)
    except (OSError, ValueError) as exc:  # ValueError: an extension Pillow cannot write
        print(f"nothotdog: cannot write {out}: {exc}", file=sys.stderr)
        return 1
    caption = replies.why_caption(verdict, model.spec)
    print(f"{out}\t{caption.splitlines()[0]}")
    return 0


def classify_files(model: OnnxModel, files: list[Path]) -> list[dict[str, object]]:
    """One result per file, in order; unreadable files get an ``error`` instead of a label."""
    results: list[dict[str, object]] = []
    for start in range(0, len(files), CHUNK):
        decoded, rows = [], []
        for path in files[start : start + CHUNK]:
            row: dict[str, object] = {"path": str(path)}
            rows.append(row)
            try:
                decoded.append((row, decode(model, path.read_bytes())))
            except (ImageDecodeError, OSError) as exc:
                row["error"] = str(exc)
        if decoded:
            verdicts = predict(model, [image for _, image in decoded])
            for (row, _), verdict in zip(decoded, verdicts, strict=True):
                row.update(
                    label=verdict.label,
                    p_hotdog=round(verdict.p_positive, 6),
                    probability=round(verdict.probability, 6),  # of ``label``
                    hotdog=verdict.is_positive,
                    probabilities={label: round(p, 6) for label, p in
                                   zip(model.spec.labels, verdict.probabilities, strict=True)},
                )
        results.extend(rows)
    return results


def _image_files(paths: list[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
            )
        elif path.is_file():
            yield path  # named explicitly: try it whatever its suffix


def _line(row: dict[str, object], model: OnnxModel) -> str:
    if "error" in row:
        return f"{row['path']}\terror: {row['error']}"
    probabilities = row["probabilities"]
    assert isinstance(probabilities, dict)
    verdict = Verdict(
        str(row["label"]), float(row["probability"]), bool(row["hotdog"]), float(row["p_hotdog"]),
        tuple(probabilities.values()),
    )
    text = replies.verdict(verdict, model.spec)
    shown = verdict.p_positive if replies.is_hotdog(model.spec) else verdict.probability
    return f"{row['path']}\t{row['label']}\t{shown:.3f}\t{text}"


if __name__ == "__main__":
    sys.exit(main())
