"""The training run: cache frozen features, train the head, fine-tune the top block, record all.

Phase 1 is the classic recipe (freeze VGG16, train a new softmax head) made fast by caching
the frozen features. Phase 2 unfreezes the top block at a low learning rate; the layers below
it are still frozen, so their outputs are cached too, once per augmented view, and each epoch
runs only the unfrozen block on a random view of every photo.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import random
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from nothotdog.contract import INPUT_SIZE, POSITIVE_LABEL, default_display, layout
from nothotdog.contract.dataset import DatasetError, Example, class_names, list_examples
from nothotdog.training import distributed, features
from nothotdog.training.evaluate import format_summary, write_evaluation
from nothotdog.training.int8 import DEFAULT_CALIBRATION_IMAGES, int8_trunk
from nothotdog.training.metrics import calibrate_classifier, choose_threshold

# TensorFlow, and the modules here that import it at their top (training.model,
# training.weights), are imported inside the functions that train: importing it takes seconds,
# and --help, a bad argument or a missing data folder should answer at once.

# What "--unfreeze X" fine-tunes, and the frozen layer whose output is cached for it.
UNFREEZE_CUTS = {"none": "block5_pool", "block5": "block4_pool", "block4": "block3_pool"}
TRUNK_RUNTIMES = ("onnx-int8", "keras")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "default", "mirrored", "multiworker")
PACKAGES = ("tensorflow", "keras", "numpy", "pillow", "onnx", "tf2onnx", "onnxruntime")


@dataclass
class TrainConfig:
    data: Path
    out: Path
    val: Path | None = None
    extra: tuple[Path, ...] = ()  # more training folders; their classes may be a subset
    positive: str | None = None  # two classes: the one the threshold is about; None: hot_dog/first
    display: tuple[str, ...] = ()  # "LABEL=TEXT": what the bot says for LABEL
    val_split: float = 0.15
    weights: str = "imagenet"
    unfreeze: str = "block5"
    views: int = 0
    head_epochs: int = 40
    head_lr: float = 2e-4
    finetune_epochs: int = 2
    finetune_lr: float = 1e-4
    finetune_samples: int = 3500
    feature_zoom: float = 0.2
    source_power: float = features.DEFAULT_SOURCE_POWER
    trunk_runtime: str = "onnx-int8"
    calibrate: bool = True
    patience: int = 3
    batch_size: int = 32
    dropout: float = 0.5
    label_smoothing: float = 0.1
    precision: str = "auto"
    strategy: str = "auto"
    seed: int = 1337
    input_size: int = INPUT_SIZE
    cache_dir: Path | None = None
    init_from: tuple[Path, ...] = ()
    augment: features.AugmentParams = field(default_factory=features.AugmentParams)


def split_examples(examples: list[Example], fraction: float, seed: int):
    """A stratified, seeded train/val split for data folders without a separate val folder."""
    if not 0 < fraction < 1:
        raise DatasetError("--val-split must be between 0 and 1")
    rng = random.Random(seed)
    train, val = [], []
    for label in sorted({e.label for e in examples}):
        group = [e for e in examples if e.label == label]
        rng.shuffle(group)
        n_val = max(1, round(len(group) * fraction))
        if n_val >= len(group):
            raise DatasetError(f"class {label} has too few images to split off validation")
        val += group[:n_val]
        train += group[n_val:]
    return sorted(train, key=lambda e: str(e.path)), sorted(val, key=lambda e: str(e.path))


def choose_positive(labels: Sequence[str], requested: str | None) -> str:
    """--positive, checked; by default hot_dog when there is one, else the first label."""
    if requested is not None:
        if requested not in labels:
            raise ValueError(f"--positive {requested!r} is not one of the classes {list(labels)}")
        return requested
    return POSITIVE_LABEL if POSITIVE_LABEL in labels else labels[0]


def display_texts(labels: Sequence[str], positive: str, pairs: Sequence[str]) -> dict[str, str]:
    """What the bot will say per label: the readable defaults, with --display LABEL=TEXT over
    them (checked here, before an hour of training, not at export)."""
    texts = default_display(labels, positive)
    for pair in pairs:
        label, sep, text = pair.partition("=")
        if not sep or not text.strip():
            raise ValueError(f"--display wants LABEL=TEXT, got {pair!r}")
        if label not in labels:
            raise ValueError(f"--display {label!r} is not one of the classes {list(labels)}")
        texts[label] = text.strip()
    return texts


def load_data(cfg: TrainConfig) -> tuple[list[str], list[Example], list[Example]]:
    labels = class_names(cfg.data)
    examples = list_examples(cfg.data, labels)
    if cfg.val is not None:
        val_labels = class_names(cfg.val)
        if val_labels != labels:
            raise DatasetError(f"{cfg.val} has classes {val_labels}, {cfg.data} has {labels}")
        train, val = examples, list_examples(cfg.val, labels)
    else:
        train, val = split_examples(examples, cfg.val_split, cfg.seed)
    for folder in cfg.extra:  # training only: val stays comparable from run to run
        if not Path(folder).is_dir():
            raise DatasetError(f"{folder} is not a folder")
        train += list_examples(folder, labels, every_class=False)
    return labels, train, val


def cpu_has_bf16() -> bool:
    """AMX or AVX512-BF16: where bfloat16 convolutions run several times faster than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags for flag in ("amx_bf16", "avx512_bf16"))


def choose_precision(requested: str = "auto") -> str:
    """mixed_float16 on GPUs, mixed_bfloat16 on CPUs with bf16 units, else float32."""
    if requested != "auto":
        if requested not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}")
        return requested
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


def choose_strategy(requested: str = "auto"):
    """One device by default; all local GPUs when there are several; TF_CONFIG means workers."""
    import tensorflow as tf

    if requested == "auto":
        if os.environ.get("TF_CONFIG") and json.loads(os.environ["TF_CONFIG"]).get("cluster"):
            requested = "multiworker"
        elif len(tf.config.list_physical_devices("GPU")) > 1:
            requested = "mirrored"
        else:
            requested = "default"
    if requested == "multiworker":
        return distributed.multi_worker_strategy()
    if requested == "mirrored":
        return tf.distribute.MirroredStrategy()
    if requested == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}")


def run_training(cfg: TrainConfig) -> dict:
    """Train, evaluate and save; returns what metrics.json holds."""
    from nothotdog.training.model import precision_policy

    precision = choose_precision(cfg.precision)
    with precision_policy(precision):
        return _run(dataclasses.replace(cfg, out=Path(cfg.out)), precision)


def _run(cfg: TrainConfig, precision: str) -> dict:
    started = time.time()
    if cfg.unfreeze not in UNFREEZE_CUTS:
        raise ValueError(f"--unfreeze must be one of {sorted(UNFREEZE_CUTS)}")
    labels, train_ex, val_ex = load_data(cfg)
    positive = choose_positive(labels, cfg.positive)
    display_texts(labels, positive, cfg.display)  # a typo fails now, not after training
    print(f"data: {len(train_ex)} training and {len(val_ex)} validation images, classes {labels}")
    cfg.out.mkdir(parents=True, exist_ok=True)

    import keras

    from nothotdog.training.model import build_classifier, split_at
    from nothotdog.training.weights import load_backbone_weights

    keras.utils.set_random_seed(cfg.seed)
    strategy = choose_strategy(cfg.strategy)
    print(f"precision {precision}, strategy {type(strategy).__name__}")

    with strategy.scope():
        classifier = build_classifier(len(labels), cfg.dropout, cfg.input_size)
        weights_source = load_backbone_weights(classifier, cfg.weights)
    print(f"backbone weights: {weights_source}")
    if cfg.init_from:
        _start_from(classifier, cfg.init_from)
    cut = UNFREEZE_CUTS[cfg.unfreeze]
    trunk, top = split_at(classifier, cut)
    print(f"caching {cut} outputs (1 clean + {cfg.views} augmented views of each training photo)")
    t0 = time.time()
    cache = _feature_cache(cfg, trunk, f"{weights_source}|{cut}", precision, train_ex)
    train_digests, val_digests = features.file_digests(train_ex), features.file_digests(val_ex)
    val_x = cache.outputs(val_ex, val_digests, 0, "val")  # view 0: the plain photos
    views = [cache.outputs(train_ex, train_digests, v, "train") for v in range(cfg.views + 1)]
    weights = features.example_weights(train_ex, cfg.source_power)
    data = features.Features(labels, positive, train_ex, val_ex, views, val_x, weights,
                             train_digests, val_digests, seconds=time.time() - t0)  # fmt: skip
    phases, history, final = _train_phases(cfg, strategy, classifier, top, data)
    return _finish(cfg, classifier, phases, history, final, data, {
        "started": started, "weights_source": weights_source, "precision": precision,
        "strategy": type(strategy).__name__,
    })  # fmt: skip


def _feature_cache(cfg: TrainConfig, trunk, trunk_id: str, precision: str,
                   train_ex: list[Example]) -> features.FeatureCache:  # fmt: skip
    """The frozen trunk's cache: Keras as trained, or int8 onnxruntime built from float32."""
    folder = Path(cfg.cache_dir) if cfg.cache_dir else cfg.out / "cache"
    shape = tuple(int(d) for d in trunk.output.shape[1:])
    if cfg.trunk_runtime != "onnx-int8":

        def predict(images: np.ndarray) -> np.ndarray:
            return np.asarray(trunk.predict_on_batch(images), dtype=np.float16)

        trunk_id += f"|{precision}"
    else:
        int8: list = []  # built on the first cache miss: a rerun on a full cache skips it

        def predict(images: np.ndarray) -> np.ndarray:
            if not int8:
                print("quantizing the frozen trunk to int8 for the feature cache")
                int8.append(int8_trunk(trunk, train_ex, cfg.out / "trunk", cfg.input_size))
            return int8[0](images)

        trunk_id += f"|onnx-int8-{DEFAULT_CALIBRATION_IMAGES}"
    return features.FeatureCache(predict, shape, folder, f"{trunk_id}|{cfg.input_size}",
                                 cfg.seed, cfg.augment, cfg.batch_size, cfg.input_size)  # fmt: skip


def _train_phases(cfg: TrainConfig, strategy, classifier, top, data: features.Features):
    """Phase 1 (the head), then phase 2 (the top block) if asked and if it lowers val loss;
    returns each phase's metrics, the histories and the phase whose weights stay."""
    from nothotdog.training.model import finetune_top, train_head

    history1: dict = {}
    if cfg.head_epochs > 0:
        with strategy.scope():
            history1 = train_head(classifier, top, data, cfg)
    phase1 = evaluate_phase("phase1", classifier, top, data, cfg.out, history1)
    history, phases, final = {"phase1": history1}, {"phase1": phase1}, "phase1"
    if cfg.unfreeze != "none" and cfg.finetune_epochs > 0:
        before = classifier.get_weights()
        with strategy.scope():
            history["phase2"] = finetune_top(classifier, top, data, cfg)
        phases["phase2"] = evaluate_phase("phase2", classifier, top, data, cfg.out,
                                          history["phase2"])  # fmt: skip
        # A continued run's "phase1" is the earlier run's calibrated model, not a fair rival.
        if cfg.head_epochs == 0 or phases["phase2"]["log_loss"] <= phase1["log_loss"]:
            final = "phase2"
        else:
            print("phase 2 did not lower validation loss: keeping the phase 1 model")
            classifier.set_weights(before)
    return phases, history, final


def evaluate_phase(name: str, classifier, top, data: features.Features, out: Path, history) -> dict:
    """Validation metrics, plots and the decision threshold chosen on validation."""
    import keras

    from nothotdog.training.model import FEATURE_BATCH, HEAD_DROPOUT, head_layers, stack

    inp = keras.Input(data.val_x.shape[1:])
    layers = [layer for layer in head_layers(classifier) if layer.name != HEAD_DROPOUT]
    model = keras.Model(inp, stack(layers, stack(top, inp)))
    probs = np.asarray(distributed.local_predict(model, data.val_x, FEATURE_BATCH), np.float64)
    pos = data.labels.index(data.positive)
    if len(data.labels) == 2:
        threshold, rule = choose_threshold(data.y_val == pos, probs[:, pos])
    else:
        threshold, rule = 0.5, "argmax: more than two classes"
    metrics = write_evaluation(out / name, data.y_val, probs, data.val_ex, data.labels,
                               data.positive, threshold, history={name: history})  # fmt: skip
    np.save(out / name / "val_probabilities.npy", probs)
    return {**metrics, "threshold": float(threshold), "threshold_rule": rule}


def _finish(cfg: TrainConfig, classifier, phases: dict, history: dict, final: str,
            data: features.Features, run: dict) -> dict:  # fmt: skip
    """Calibrate the kept phase, evaluate and save it, and write the run folder's records."""
    from nothotdog.training.model import float32_copy

    labels, positive, out = data.labels, data.positive, cfg.out
    threshold, rule = phases[final]["threshold"], phases[final]["threshold_rule"]
    probs = np.load(out / final / "val_probabilities.npy")
    calibration = None
    if cfg.calibrate and len(labels) == 2:
        probs, calibration = calibrate_classifier(
            classifier, probs, data.y_val, labels.index(positive)
        )
        threshold, rule = 0.5, calibration.pop("threshold_rule")
    metrics = write_evaluation(
        out, data.y_val, probs, data.val_ex, labels, positive, threshold, history=history
    )
    # float32: export and evaluation must not inherit the training precision.
    float32_copy(classifier).save(out / layout.MODEL_FILE)
    wall = time.time() - run.pop("started")
    summary = {
        "threshold": threshold,
        "threshold_rule": rule,
        "calibration": calibration,
        "sampling": {"source_power": cfg.source_power,
                     "shares": features.source_shares(data.train_ex, data.weights)},
        "final_phase": final,
        "val": metrics,
        **phases,
        "wall_time_s": round(wall, 1),
        "feature_cache_s": round(data.seconds, 1),
    }  # fmt: skip
    _write_records(cfg, summary, history, data, run)
    print()
    for name, m in phases.items():
        print(f"{name}: val accuracy {m['accuracy']:.4f}, log loss {m['log_loss']:.4f}")
    print(f"final model: {final}, threshold {threshold:.3f} ({rule})")
    print(format_summary(metrics))
    print(f"wall time {wall / 60:.1f} min; run folder {out}")
    return summary


def _write_records(cfg: TrainConfig, summary: dict, history: dict, data: features.Features,
                   run: dict) -> None:  # fmt: skip
    """The JSON files beside model.keras: what export, evaluation and a reader need to trace
    and reproduce the result."""
    labels = data.labels

    def files(examples: Sequence[Example], digests: Sequence[str]) -> list[dict]:
        return [{"path": str(e.path), "label": labels[e.label], "source": e.source, "sha256": d}
                for e, d in zip(examples, digests, strict=True)]  # fmt: skip

    def counts(examples: Sequence[Example]) -> dict:
        return {"n": len(examples), "per_label": dict(Counter(labels[e.label] for e in examples)),
                "per_source": dict(Counter(e.source for e in examples))}  # fmt: skip

    versions = {"python": platform.python_version(), "machine": platform.machine()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    write_json(cfg.out / layout.METRICS_FILE, summary)
    write_json(cfg.out / layout.LABELS_FILE, {
        "labels": labels, "positive_label": data.positive,
        "display": display_texts(labels, data.positive, cfg.display),
    })  # fmt: skip
    write_json(cfg.out / layout.HISTORY_FILE, history)
    write_json(cfg.out / layout.CONFIG_FILE, {
        "config": asdict(cfg),  # write_json turns paths, alone or in init_from's tuple, into str
        **run,
        "versions": versions,
        "data_summary": {"train": counts(data.train_ex), "val": counts(data.val_ex)},
    })  # fmt: skip
    write_json(cfg.out / layout.FILES_FILE, {"train": files(data.train_ex, data.train_digests),
                                      "val": files(data.val_ex, data.val_digests)})  # fmt: skip


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def _start_from(classifier, runs: tuple[Path, ...]) -> None:
    """Continue finished runs: the trunk is unchanged (so is the cache); the top and head start
    where they ended instead of from the ImageNet block and a new head.

    Several runs are averaged weight by weight, a uniform "model soup" (Wortsman et al., 2022):
    runs fine-tuned from one parent stay close enough that their mean works as one model, at
    one model's inference cost. Run with no epochs, it is just the soup.
    """
    weights = []
    for run in map(Path, runs):
        classifier.load_weights(run / layout.MODEL_FILE if run.is_dir() else run)
        weights.append(classifier.get_weights())
    if len(weights) > 1:
        mean = [np.mean(w, axis=0, dtype=w[0].dtype) for w in zip(*weights, strict=True)]
        classifier.set_weights(mean)
    print(f"continuing from {' + '.join(map(str, runs))}")
