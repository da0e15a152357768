"""Training on several machines: MultiWorkerMirroredStrategy, and what Keras 3 needs for it.

Keras 3's ``Model.fit`` does not run under ``MultiWorkerMirroredStrategy`` as shipped (open
upstream as keras-team/keras#20585; seen with TF 2.21 and Keras 3.15): it reduces each step's
scalar logs across workers with ``axis=0`` ("Invalid reduction dimension 0 for input with 0
dimensions"), it passes a whole (x, y, weight) batch to ``strategy.reduce`` when it first
builds the model ("Attempt to convert a value (PerReplica ...)"), and ``predict`` fails to
gather the workers' shards. :func:`multi_worker_strategy` makes the strategy and mends the
first two; :func:`local_predict` sidesteps the third, since every prediction in training is
of data each worker needs whole (cached features, validation probabilities).
"""

from __future__ import annotations

import numpy as np

# TensorFlow is imported inside the functions, as in train.py (which imports this module at its
# top): it takes seconds to import.
_PATCHED = False
# TF's coordination service declares a worker dead after this long without a heartbeat. Its
# default, 10 s, is shorter than a worker can go without the CPU while every core runs VGG16
# (or other work shares the machine): seen here as "heartbeat timeout" aborts. A dead worker
# is still noticed, two minutes later, in a run that takes hours.
HEARTBEAT_TIMEOUT_S = 120


def multi_worker_strategy():
    """``MultiWorkerMirroredStrategy`` from ``TF_CONFIG``, with Keras's fit made to work on it."""
    import tensorflow as tf

    _configure_coordination()
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    _patch_keras()
    return strategy


def _configure_coordination() -> None:
    """What the strategy would configure itself (it leaves a configured service alone), with
    a longer heartbeat timeout."""
    import tensorflow as tf
    from tensorflow.python.distribute import collective_all_reduce_strategy as collective
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    spec = tf.distribute.cluster_resolver.TFConfigClusterResolver().cluster_spec()
    jobs = [
        collective.coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
        for job in ("chief", "worker")
        if job in spec.jobs
    ]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=jobs,
        heartbeat_timeout_in_ms=HEARTBEAT_TIMEOUT_S * 1000,
    )


def local_predict(model, x: np.ndarray, batch_size: int) -> np.ndarray:
    """``model.predict(x)``, but on this process only when several workers train together."""
    import tensorflow as tf

    if not _multi_worker(tf.distribute.get_strategy()):
        return model.predict(x, batch_size=batch_size, verbose=0)
    if len(x) == 0:
        return np.zeros((0, *model.output.shape[1:]), np.float32)
    return np.concatenate([np.asarray(model(x[start : start + batch_size], training=False))
                           for start in range(0, len(x), batch_size)])  # fmt: skip


def _multi_worker(strategy) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and (
        strategy.extended._in_multi_worker_mode()
    )


def _patch_keras() -> None:
    """Mend Keras's TensorFlow trainer for multi-worker runs; other strategies are untouched."""
    global _PATCHED
    if _PATCHED:
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer
    from keras.src.tree import map_structure

    reduce_per_replica = trainer.reduce_per_replica
    symbolic_build = trainer.TensorFlowTrainer._maybe_symbolic_build

    def reduce_logs(values, strategy, reduction):
        # fit's and evaluate's logs ("auto"): the mean over all workers, one scalar each, so
        # every worker sees the same loss and callbacks decide alike (or the workers hang).
        if reduction == "auto" and _multi_worker(strategy):
            return map_structure(lambda v: strategy.reduce("MEAN", v, axis=None), values)
        return reduce_per_replica(values, strategy, reduction)

    def build_from_local_batch(self, iterator=None, data_batch=None):
        # Building needs only the shapes of one batch: this worker's part of it will do.
        if iterator is not None and _multi_worker(self.distribute_strategy):
            strategy = self.distribute_strategy
            for _, _, it in iterator:
                data_batch = map_structure(
                    lambda v: (
                        strategy.experimental_local_results(v)[0]
                        if isinstance(v, tf.distribute.DistributedValues)
                        else v
                    ),
                    next(it),
                )
                break
            with strategy.scope():
                self._symbolic_build(data_batch=data_batch)
            return
        symbolic_build(self, iterator=iterator, data_batch=data_batch)

    trainer.reduce_per_replica = reduce_logs
    trainer.TensorFlowTrainer._maybe_symbolic_build = build_from_local_batch
    _PATCHED = True
