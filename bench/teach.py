"""How right a chat's own labels are: taught as the bot teaches them, judged as it judges.

``python -m bench.teach DATA`` (DATA: the hot-dog data set, with train/ and val/): teach
``--per-label`` photos (default 10) of each of hot dog (``fastfood`` hot dogs), pizza
(``pizzanotpizza``) and burger (``samosaburger``) from DATA/train, then judge every DATA/val
photo of those three sources (about 176), through the bot's own code: the shipped model
(bot.classifier.load_model), bytes decoded as the bot decodes them, one model run for
verdict and features (predict_with_features), the nearest class mean (bot.taught).

Draw 0 takes the first photos by file name; ``--draws`` more are seeded random draws, so the
figure is not one lucky pick. Also measured: how often the answer is "not sure" on those
photos and on ``--others`` val photos of every other source (where "not sure" is the right
answer for a dish nobody taught), and, with ``--compare``, scikit-learn's logistic
regression on the same numbers (scikit-learn is a training dependency: ``.[train]``).
"""

from __future__ import annotations

import argparse
import random
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench.common import Stopwatch, cpu_model, table, write_result
from nothotdog.bot.classifier import decode, load_model, predict_with_features, shipped_model_path
from nothotdog.bot.taught import NearestMean, unit
from nothotdog.contract.runtime import OnnxModel

# label -> (folder under train/ and val/, file-name prefix of its source)
LABELS = {"hot dog": ("hot_dog", "fastfood__"), "pizza": ("not_hot_dog", "pizzanotpizza__"),
          "burger": ("not_hot_dog", "samosaburger__")}  # fmt: skip
TARGET = 0.94


def photos(root: Path, split: str, label: str) -> list[Path]:
    folder, prefix = LABELS[label]
    return sorted((root / split / folder).glob(f"{prefix}*"))


def others(root: Path, n: int, seed: int) -> list[Path]:
    """``n`` val photos of every other source: dishes (and things) nobody taught."""
    taught = tuple(prefix for _, prefix in LABELS.values())
    pool = sorted(p for p in (root / "val").glob("*/*") if not p.name.startswith(taught))
    return sorted(random.Random(seed).sample(pool, min(n, len(pool))))


class Features:
    """Each photo's features, computed once, as the bot computes them."""

    def __init__(self, model: OnnxModel) -> None:
        self.model = model
        self._seen: dict[Path, np.ndarray] = {}

    def __call__(self, paths: Sequence[Path]) -> np.ndarray:
        for path in paths:
            if path not in self._seen:
                _, self._seen[path] = predict_with_features(self.model,
                                                            decode(self.model, path.read_bytes()))
        return np.stack([self._seen[p] for p in paths])


def logistic(taught: dict[str, np.ndarray], c: float) -> Callable[[np.ndarray], str]:
    """scikit-learn's logistic regression on the same (square-rooted, unit) numbers."""
    from sklearn.linear_model import LogisticRegression

    labels = list(taught)
    x = np.concatenate([unit(rows) for rows in taught.values()])
    y = np.concatenate([[i] * len(rows) for i, rows in enumerate(taught.values())])
    fit = LogisticRegression(C=c, max_iter=5000).fit(x, y)
    return lambda features: labels[int(fit.predict(unit(features[None]))[0])]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.teach", description=__doc__.split("\n")[0])
    p.add_argument("data", type=Path, help="the data set: DATA/train and DATA/val")
    p.add_argument("--model", type=Path, default=shipped_model_path())
    p.add_argument("--per-label", type=int, default=10, help="photos taught a label")
    p.add_argument("--draws", type=int, default=20, help="seeded random draws after draw 0")
    p.add_argument("--others", type=int, default=400, help="val photos of other sources")
    p.add_argument("--compare", action="store_true", help="also logistic regression")
    args = p.parse_args(argv)
    clock = Stopwatch()
    model = load_model(args.model)
    if not model.has_features:
        p.error(f"{args.model} has no features output (nothotdog-export --add-features)")
    features = Features(model)
    val = {label: features(photos(args.data, "val", label)) for label in LABELS}
    strangers = features(others(args.data, args.others, seed=0))
    rows, results = [], []
    for draw in range(args.draws + 1):
        rng = random.Random(draw)
        taught = {}
        for label in LABELS:
            pool = photos(args.data, "train", label)
            picked = pool[: args.per_label] if draw == 0 else rng.sample(pool, args.per_label)
            taught[label] = features(picked)
        classifier = NearestMean(taught)
        answers = {label: [classifier.classify(f) for f in rows_] for label, rows_ in val.items()}
        n = sum(len(a) for a in answers.values())
        right = sum(a.label == label for label, got in answers.items() for a in got) / n
        sure_right = sum(a.label == label and a.sure
                         for label, got in answers.items() for a in got) / n  # fmt: skip
        flagged = float(np.mean([not classifier.classify(f).sure for f in strangers]))
        result = {"draw": draw, "photos": n, "right": right, "right_and_sure": sure_right,
                  "others_not_sure": flagged}  # fmt: skip
        if args.compare:
            for c in (1.0, 10.0):
                fit = logistic(taught, c)
                result[f"logistic_C{c:g}"] = sum(fit(f) == label for label, rows_ in val.items()
                                                 for f in rows_) / n  # fmt: skip
        results.append(result)
        rows.append([f"{k:.1%}" if isinstance(k, float) else k for k in result.values()])
    print(table(list(results[0]), rows, f"{args.per_label} photos a label taught, judged on val"))
    mean = {k: float(np.mean([r[k] for r in results])) for k in results[0] if k != "draw"}
    worst = min(r["right"] for r in results)
    print(f"\nnearest class mean: draw 0 {results[0]['right']:.1%}, mean of {len(results)} draws "
          f"{mean['right']:.1%} (worst {worst:.1%}); target {TARGET:.0%}; CPU {cpu_model()}")
    for name in (k for k in mean if k.startswith("logistic")):
        print(f"{name}: mean of {len(results)} draws {mean[name]:.1%}")
    write_result("teach", {"model": str(args.model), "per_label": args.per_label,
                           "draws": results, "mean": mean}, clock)  # fmt: skip
    return 0 if results[0]["right"] >= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
