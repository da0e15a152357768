"""The two training phases and their evaluation, all on cached trunk outputs (Features)."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np

from nothotdog.training.distributed import local_predict
from nothotdog.training.features import Features
from nothotdog.training.model import HEAD_DROPOUT, HEAD_POOL, head_layers, stack

FEATURE_BATCH = 64


def _one_hot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[y]


def _loss(cfg) -> keras.losses.Loss:
    return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)


def keep_best(patience: int) -> keras.callbacks.EarlyStopping:
    """Stop after ``patience`` epochs without a lower validation loss and keep the best epoch
    (Keras 3 restores the best weights even when every epoch ran)."""
    return keras.callbacks.EarlyStopping(
        monitor="val_loss", patience=patience, restore_best_weights=True, verbose=1
    )


def pooled_features(top: list, features: np.ndarray, classifier: keras.Model) -> np.ndarray:
    """The frozen top block plus global pooling: the head's input, 512 numbers per photo."""
    inp = keras.Input(features.shape[1:])
    pooler = keras.Model(inp, classifier.get_layer(HEAD_POOL)(stack(top, inp)))
    return np.asarray(local_predict(pooler, features, FEATURE_BATCH), np.float32)


def train_head(classifier, top, data: Features, cfg) -> dict:
    """Phase 1: frozen VGG16, new softmax head, trained on pooled features of every view."""
    k = classifier.output.shape[-1]
    print("phase 1: training the new head on frozen features")
    pooled = [pooled_features(top, v, classifier) for v in data.train_views]
    x = np.concatenate(pooled)
    y = np.concatenate([data.y_train] * len(pooled))
    w = np.concatenate([data.weights] * len(pooled))
    val_pooled = pooled_features(top, data.val_x, classifier)
    inp = keras.Input(x.shape[1:])
    head = keras.Model(inp, stack(head_layers(classifier)[1:], inp), name="head")
    head.compile(keras.optimizers.Adam(cfg.head_lr), _loss(cfg), metrics=["accuracy"])
    fit = head.fit(
        x, _one_hot(y, k), sample_weight=w, batch_size=FEATURE_BATCH,
        epochs=cfg.head_epochs, validation_data=(val_pooled, _one_hot(data.y_val, k)),
        callbacks=[keep_best(max(cfg.patience, 5))], verbose=2,
    )  # fmt: skip
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


class ViewSampler(keras.utils.PyDataset):
    """Each epoch: ``samples`` photos drawn in proportion to their weights, each as a random
    cached view. Drawing by weight (rather than weighting the loss) spends the fine-tuning
    steps where the weights say they matter: food negatives and hot dogs get seen more often
    than the thousandth living room."""

    def __init__(self, views, y, weights, num_classes, batch_size, samples, seed, **kwargs):
        super().__init__(**kwargs)
        self.views, self.y, self.k, self.batch_size = views, y, num_classes, batch_size
        self.p = np.asarray(weights, np.float64) / np.sum(weights)
        self.samples = samples
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def on_epoch_end(self):
        self.order = self.rng.choice(len(self.y), size=self.samples, p=self.p)
        self.view_of = self.rng.integers(0, len(self.views), self.samples)

    def __len__(self):
        return math.ceil(self.samples / self.batch_size)

    def __getitem__(self, index):
        rows = slice(index * self.batch_size, (index + 1) * self.batch_size)
        idx, views = self.order[rows], self.view_of[rows]
        x = np.stack([self.views[v][i] for i, v in zip(idx, views, strict=True)])
        return x.astype(np.float32), _one_hot(self.y[idx], self.k)


def feature_augmentation(zoom: float) -> list[keras.layers.Layer]:
    """Random zoom and shift of the cached feature maps, active only while fitting.

    Convolutions commute with translation, so shifting or zooming a ``block4_pool`` map is
    close to cropping the photo before the trunk: a cheap stand-in for more augmented views,
    each of which would cost a full trunk pass per photo.
    """
    if zoom <= 0:
        return []
    return [
        keras.layers.RandomZoom((-zoom, 0.0), fill_mode="nearest", name="aug_zoom"),
        keras.layers.RandomTranslation(zoom / 2, zoom / 2, fill_mode="nearest", name="aug_shift"),
    ]


def finetune_top(classifier, top, data: Features, cfg) -> dict:
    """Phase 2: the top blocks unfrozen, learning rate warming up then decaying (cosine)."""
    k = classifier.output.shape[-1]
    print(f"phase 2: fine-tuning {len(top)} layers ({top[0].name} ... {top[-1].name})")
    inp = keras.Input(data.val_x.shape[1:])
    x = stack(feature_augmentation(cfg.feature_zoom), inp)
    model = keras.Model(inp, stack(head_layers(classifier), stack(top, x)), name="finetune")
    sampler = ViewSampler(data.train_views, data.y_train, data.weights, k, cfg.batch_size,
                          cfg.finetune_samples, cfg.seed)  # fmt: skip
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, len(sampler) * cfg.finetune_epochs, warmup_target=cfg.finetune_lr,
        warmup_steps=max(1, len(sampler) // 2),
    )  # fmt: skip
    model.compile(keras.optimizers.Adam(schedule), _loss(cfg), metrics=["accuracy"])
    fit = model.fit(
        sampler, epochs=cfg.finetune_epochs, validation_data=(data.val_x, _one_hot(data.y_val, k)),
        validation_batch_size=FEATURE_BATCH, callbacks=[keep_best(cfg.patience)], verbose=2,
    )  # fmt: skip
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


def evaluate_phase(name: str, classifier, top, data: Features, out: Path, history) -> dict:
    """Validation metrics, plots and the decision threshold chosen on validation."""
    from nothotdog.training.metrics import choose_threshold
    from nothotdog.training.report import write_evaluation

    inp = keras.Input(data.val_x.shape[1:])
    layers = [layer for layer in head_layers(classifier) if layer.name != HEAD_DROPOUT]
    model = keras.Model(inp, stack(layers, stack(top, inp)))
    probs = np.asarray(local_predict(model, data.val_x, FEATURE_BATCH), np.float64)
    labels, positive = data.labels, data.positive
    pos = labels.index(positive)
    if len(labels) == 2:
        threshold, rule = choose_threshold(data.y_val == pos, probs[:, pos])
    else:
        threshold, rule = 0.5, "argmax: more than two classes"
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "val_probabilities.npy", probs)
    metrics = write_evaluation(folder, data.y_val, probs, data.val_ex, labels, positive, threshold,
                               history={name: history})  # fmt: skip
    return {**metrics, "threshold": float(threshold), "threshold_rule": rule}
