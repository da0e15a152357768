"""The classifier: its preprocessing layer, its architecture, how it splits into a frozen trunk
and a trainable top, the two phases that train the top on the trunk's cached outputs, and its
float32 copy for saving and for ONNX."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras
import numpy as np

from nothotdog.contract import IMAGENET_MEAN_BGR, INPUT_NAME, INPUT_SIZE, OUTPUT_NAME
from nothotdog.training.distributed import local_predict
from nothotdog.training.features import Features

HEAD_POOL, HEAD_DROPOUT = "head_pool", "head_dropout"
FEATURE_BATCH = 64
LOW_PRECISION = frozenset({"mixed_bfloat16", "mixed_float16", "bfloat16", "float16"})


@keras.saving.register_keras_serializable(package="nothotdog")
class VGGPreprocess(keras.layers.Layer):
    """uint8 RGB in, VGG16 "caffe" input out (float, BGR, ImageNet mean removed). Living in
    the graph, it travels into the ONNX file, so the bot only decodes and resizes. Saved files
    find it by its registered name, ``nothotdog>VGGPreprocess``, whatever module they name."""

    def __init__(self, **kwargs):
        # float32 even under mixed precision: the mean subtraction stays exact.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)

    def call(self, inputs):
        x = keras.ops.flip(keras.ops.cast(inputs, "float32"), axis=-1)  # RGB -> BGR
        return x - keras.ops.convert_to_tensor(IMAGENET_MEAN_BGR, dtype="float32")

    def compute_output_shape(self, input_shape):
        return input_shape


def build_backbone(input_size: int = INPUT_SIZE) -> keras.Model:
    """VGG16's convolutional base with no weights, as Keras defines it (for reading .h5 files)."""
    return keras.applications.VGG16(
        weights=None, include_top=False, input_shape=(input_size, input_size, 3)
    )


def build_classifier(num_classes: int, dropout: float, input_size: int = INPUT_SIZE) -> keras.Model:
    """uint8 RGB image in (the contract), class probabilities out; preprocessing in the graph.

    VGG16 is built on the preprocessed tensor, so its layers sit flat in this one graph and
    ``split_at`` can cut it anywhere. Its weights are filled by ``training.weights``.
    """
    image = keras.Input((input_size, input_size, 3), dtype="uint8", name=INPUT_NAME)
    x = VGGPreprocess(name="vgg_preprocess")(image)
    vgg = keras.applications.VGG16(weights=None, include_top=False, input_tensor=x)
    x = keras.layers.GlobalAveragePooling2D(name=HEAD_POOL)(vgg.output)
    x = keras.layers.Dropout(dropout, name=HEAD_DROPOUT)(x)
    # float32 softmax even under mixed precision: probabilities must be exact for export parity.
    out = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name=OUTPUT_NAME)
    return keras.Model(image, out(x), name="nothotdog_vgg16")


def split_at(classifier: keras.Model, cut: str) -> tuple[keras.Model, list[keras.layers.Layer]]:
    """(trunk: image -> ``cut`` output, the conv layers between ``cut`` and the head). The trunk
    stays frozen, so its outputs can be cached; the pieces share the classifier's layer objects,
    so training them trains the classifier that is saved."""
    names = [layer.name for layer in classifier.layers]
    if cut not in names or names.index(cut) >= names.index(HEAD_POOL):
        choices = names[2 : names.index(HEAD_POOL)]
        raise ValueError(f"no backbone layer {cut!r}; choose one of {choices}")
    trunk = keras.Model(classifier.input, classifier.get_layer(cut).output, name="trunk")
    return trunk, classifier.layers[names.index(cut) + 1 : names.index(HEAD_POOL)]


def head_layers(classifier: keras.Model) -> list[keras.layers.Layer]:
    return [classifier.get_layer(name) for name in (HEAD_POOL, HEAD_DROPOUT, OUTPUT_NAME)]


def stack(layers: list[keras.layers.Layer], x):
    for layer in layers:
        x = layer(x)
    return x


# --- the two phases ---------------------------------------------------------------------------


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
        weights = np.asarray(weights, np.float64)  # summed in float32, p could miss 1
        self.p = weights / weights.sum()
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
    """Random zoom and shift of the cached feature maps, active only while fitting. Convolutions
    commute with translation, so shifting or zooming a ``block4_pool`` map is close to cropping
    the photo before the trunk: a cheap stand-in for more augmented views, each of which would
    cost a full trunk pass per photo."""
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


# --- float32 ----------------------------------------------------------------------------------


def all_layers(model: keras.Layer) -> list[keras.Layer]:
    """Layers of nested models too (a VGG16 base may sit inside as one layer)."""
    return [x for layer in getattr(model, "layers", []) for x in (layer, *all_layers(layer))]


def low_precision(model: keras.Model) -> list[str]:
    """The mixed or half precision policies ``model``'s layers compute in, if any."""
    return sorted({layer.dtype_policy.name for layer in all_layers(model)} & LOW_PRECISION)


def float32_copy(model: keras.Model) -> keras.Model:
    """``model`` computing in float32 everywhere, with the same weights.

    A model built under mixed_bfloat16 keeps that policy per layer in its config, so setting
    the global policy is not enough: rebuild from a config with each low-precision policy
    replaced, then copy the (already float32) variables over. Saving, export and the ONNX
    trunk need it: onnxruntime's CPU convolutions take no bfloat16, and a saved file must not
    pass the training precision on. Always a new model, outside any distribution strategy.
    """
    with precision_policy("float32"):
        clean = model.__class__.from_config(_float32_config(model.get_config()))
    weights = model.get_weights()
    if [w.shape for w in clean.get_weights()] != [w.shape for w in weights]:
        raise ValueError("the float32 rebuild does not match the model's weights")
    clean.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    return clean


@contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Keras's precision policy is global: set it for one run and put the old one back."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _float32_config(node: Any, key: str | None = None) -> Any:
    """A Keras config with each low-precision policy (a ``dtype`` string, or the ``name`` in a
    DTypePolicy's config) replaced by float32."""
    if isinstance(node, dict):
        return {k: _float32_config(v, k) for k, v in node.items()}
    if isinstance(node, list):
        return [_float32_config(v) for v in node]
    return "float32" if key in ("dtype", "name") and node in LOW_PRECISION else node
