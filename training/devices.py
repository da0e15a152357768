"""Numeric precision and distribution strategy for the machine at hand."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "default", "mirrored", "multiworker")


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


@contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Keras's precision policy is global: set it for one run and put the old one back."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


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
        from nothotdog.training.distributed import multi_worker_strategy

        return multi_worker_strategy()
    if requested == "mirrored":
        return tf.distribute.MirroredStrategy()
    if requested == "default":
        return tf.distribute.get_strategy()
    raise ValueError(f"strategy must be one of {STRATEGIES}")
