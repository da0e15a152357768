"""``nothotdog feedback export DIR`` and ``nothotdog feedback stats``: the votes, for operators.

The export downloads each voted photo through the Bot API (the bot's own token and server) into
``DIR/<label>/feedback__<file_unique_id>.<ext>``, by its voters' majority; a photo already
there is skipped, so the export can be run again as votes come in. The ``feedback__`` prefix is
the source tag ``nothotdog-train`` reports these photos under.
"""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import httpx
from tqdm import tqdm

from nothotdog.bot.feedback import FeedbackStore
from nothotdog.bot.settings import Settings
from nothotdog.contract.dataset import SOURCE_SEPARATOR

SOURCE = "feedback"


def export(store: FeedbackStore, settings: Settings, out: Path) -> tuple[int, int, int]:
    """(written, already there, failed) photos."""
    photos = store.labelled()
    written = skipped = failed = 0
    api = f"{settings.base_url}{settings.require_token()}"
    files = f"{settings.base_file_url}{settings.token}"
    with httpx.Client(timeout=settings.request_timeout) as client:
        for unique_id, file_id, label in tqdm(photos, desc="photos", unit="photo"):
            folder = out / label
            name = f"{SOURCE}{SOURCE_SEPARATOR}{unique_id}"
            if any(folder.glob(f"{name}.*")):
                skipped += 1
                continue
            try:
                info = client.get(f"{api}/getFile", params={"file_id": file_id}).json()
                path = info["result"]["file_path"]
                response = client.get(f"{files}/{path}")
                response.raise_for_status()
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                tqdm.write(f"{unique_id}: not downloaded ({type(exc).__name__})", sys.stderr)
                failed += 1
                continue
            folder.mkdir(parents=True, exist_ok=True)
            suffix = PurePosixPath(path).suffix or ".jpg"
            (folder / f"{name}{suffix}").write_bytes(response.content)
            written += 1
    return written, skipped, failed


def stats(store: FeedbackStore) -> str:
    """Votes and how often users agreed with the model, per model version and verdict."""
    rows = store.stats()
    lines = ["model\tversion\tverdict\tvotes\tright\tagreed"]
    for model, version, verdict, votes, right in rows:
        lines.append(f"{model}\t{version}\t{verdict}\t{votes}\t{right}\t{right / votes:.0%}")
    total, agreed = sum(r[3] for r in rows), sum(r[4] for r in rows)
    if total:
        lines.append(f"all\t\t\t{total}\t{agreed}\t{agreed / total:.0%}")
    return "\n".join(lines)
