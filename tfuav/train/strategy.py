"""tf.distribute strategies by name."""
import os

import tensorflow as tf

from tfuav.errors import TfuavError

STRATEGIES = ("default", "mirrored", "multi_worker")


def get_strategy(name):
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        # All visible devices: the GPUs, or the logical CPUs when there is no GPU.
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in (gpus or tf.config.list_logical_devices("CPU"))]
        return tf.distribute.MirroredStrategy(devices=devices)
    if name == "multi_worker":
        if not os.environ.get("TF_CONFIG"):
            raise TfuavError("strategy 'multi_worker' needs the TF_CONFIG environment variable "
                             "(cluster spec and this worker's task) to be set")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise TfuavError(f"unknown strategy {name!r} (choose from: {', '.join(STRATEGIES)})")
