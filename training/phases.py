"""The two training phases and their evaluation, all on cached trunk outputs."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np

from training.distributed import local_predict
from training.model import HEAD_DROPOUT, HEAD_POOL, head_layers, stack

FEATURE_BATCH = 64


def _one_hot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k, dtype=np.float32)[y]


def _loss(cfg) -> keras.losses.Loss:
    return keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing)


def class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Weights that make every class count as much as the others in the loss."""
    counts = np.bincount(y, minlength=num_classes).astype(np.float64)
    return (len(y) / (num_classes * np.maximum(counts, 1))).astype(np.float32)


def _weights(y: np.ndarray, k: int) -> np.ndarray:
    return class_weights(y, k)[y]


class KeepBest(keras.callbacks.Callback):
    """Remember the weights of the epoch with the lowest validation loss; restore them at the end.

    Unlike EarlyStopping's own restore, this also restores when training runs all its epochs.
    """

    def __init__(self, patience: int):
        super().__init__()
        self.patience = patience
        self.best = math.inf
        self.best_epoch = -1
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        loss = (logs or {}).get("val_loss", math.inf)
        if loss < self.best:
            self.best, self.best_epoch = loss, epoch
            self.best_weights = self.model.get_weights()
        elif epoch - self.best_epoch >= self.patience:
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            print(f"  kept epoch {self.best_epoch + 1} (val_loss {self.best:.4f})")


def pooled_features(top: list, features: np.ndarray, classifier: keras.Model) -> np.ndarray:
    """The frozen top block plus global pooling: the head's input, 512 numbers per photo."""
    inp = keras.Input(features.shape[1:])
    pooler = keras.Model(inp, classifier.get_layer(HEAD_POOL)(stack(top, inp)))
    return np.asarray(local_predict(pooler, features, FEATURE_BATCH), np.float32)


def train_head(classifier, top, train_views, y_train, val_x, y_val, cfg) -> dict:
    """Phase 1: frozen VGG16, new softmax head, trained on pooled features of every view."""
    k = classifier.output.shape[-1]
    print("phase 1: training the new head on frozen features")
    pooled = [pooled_features(top, v, classifier) for v in train_views]
    x = np.concatenate(pooled)
    y = np.concatenate([y_train] * len(pooled))
    val_pooled = pooled_features(top, val_x, classifier)
    inp = keras.Input(x.shape[1:])
    head = keras.Model(inp, stack(head_layers(classifier)[1:], inp), name="head")
    head.compile(keras.optimizers.Adam(cfg.head_lr), _loss(cfg), metrics=["accuracy"])
    fit = head.fit(
        x, _one_hot(y, k), sample_weight=_weights(y, k), batch_size=FEATURE_BATCH,
        epochs=cfg.head_epochs, validation_data=(val_pooled, _one_hot(y_val, k)),
        callbacks=[KeepBest(patience=max(cfg.patience, 5))], verbose=2,
    )  # fmt: skip
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


class ViewSampler(keras.utils.PyDataset):
    """Batches of cached trunk outputs where each photo appears once per epoch, as a random view."""

    def __init__(self, views, y, num_classes, batch_size, seed, **kwargs):
        super().__init__(**kwargs)
        self.views, self.y, self.k, self.batch_size = views, y, num_classes, batch_size
        self.sample_weight = _weights(y, num_classes)
        self.rng = np.random.default_rng(seed)
        self.on_epoch_end()

    def on_epoch_end(self):
        self.order = self.rng.permutation(len(self.y))
        self.view_of = self.rng.integers(0, len(self.views), len(self.y))

    def __len__(self):
        return math.ceil(len(self.y) / self.batch_size)

    def __getitem__(self, index):
        idx = self.order[index * self.batch_size : (index + 1) * self.batch_size]
        x = np.stack([self.views[self.view_of[i]][i] for i in idx]).astype(np.float32)
        return x, _one_hot(self.y[idx], self.k), self.sample_weight[idx]


def finetune_top(classifier, top, train_views, y_train, val_x, y_val, cfg) -> dict:
    """Phase 2: the top block unfrozen at a low learning rate, on augmented views."""
    k = classifier.output.shape[-1]
    print(f"phase 2: fine-tuning {len(top)} layers ({top[0].name} ... {top[-1].name})")
    inp = keras.Input(val_x.shape[1:])
    model = keras.Model(inp, stack(head_layers(classifier), stack(top, inp)), name="finetune")
    model.compile(keras.optimizers.Adam(cfg.finetune_lr), _loss(cfg), metrics=["accuracy"])
    data = ViewSampler(train_views, y_train, k, cfg.batch_size, cfg.seed)
    fit = model.fit(
        data, epochs=cfg.finetune_epochs, validation_data=(val_x, _one_hot(y_val, k)),
        validation_batch_size=FEATURE_BATCH, callbacks=[KeepBest(cfg.patience)], verbose=2,
    )  # fmt: skip
    return {key: [float(v) for v in values] for key, values in fit.history.items()}


def evaluate_phase(name, classifier, top, val_x, y_val, val_ex, labels, positive, out: Path,
                   history) -> dict:  # fmt: skip
    """Validation metrics, plots and the decision threshold chosen on validation."""
    from training.metrics import choose_threshold
    from training.report import write_evaluation

    inp = keras.Input(val_x.shape[1:])
    layers = [layer for layer in head_layers(classifier) if layer.name != HEAD_DROPOUT]
    model = keras.Model(inp, stack(layers, stack(top, inp)))
    probs = np.asarray(local_predict(model, val_x, FEATURE_BATCH), np.float64)
    pos = labels.index(positive)
    if len(labels) == 2:
        threshold, rule = choose_threshold(y_val == pos, probs[:, pos])
    else:
        threshold, rule = 0.5, "argmax: more than two classes"
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "val_probabilities.npy", probs)
    metrics = write_evaluation(
        folder, y_val, probs, val_ex, labels, positive, threshold,
        history={name: history},
    )  # fmt: skip
    return {**metrics, "threshold": float(threshold), "threshold_rule": rule}
