import tfuav  # noqa: F401  (before TensorFlow)
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from tfuav.config import TrainConfig
from tfuav.data import Dataset, Split
from tfuav.errors import TfuavError
from tfuav.train import get_strategy, lr_for_epoch, train_model

keras = tf.keras


def colour_dataset(n_train=32, size=32, seed=0):
    """Two trivially separable classes: dark and bright images (with noise)."""
    rng = np.random.default_rng(seed)

    def split(n):
        y = np.arange(n) % 2
        x = np.where(y[:, None, None, None] == 1, 190, 40) + rng.integers(-30, 30, (n, size, size, 3))
        return Split(images=np.clip(x, 0, 255).astype(np.uint8), labels=y.astype(np.int64))

    return Dataset(class_names=["dark", "bright"],
                   splits={"train": split(n_train), "val": split(16), "test": split(16)},
                   source="test")


def tiny_model(size=32):
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def test_lr_closed_form():
    cfg = TrainConfig(learning_rate=0.1, lr_decay=0.5, lr_decay_every=2)
    assert [lr_for_epoch(e, cfg) for e in range(5)] == pytest.approx(
        [0.1, 0.1, 0.05, 0.05, 0.025])


def test_unknown_strategy():
    with pytest.raises(TfuavError, match="default, mirrored, multi_worker"):
        get_strategy("tpu")


def test_multi_worker_needs_tf_config(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TfuavError, match="TF_CONFIG"):
        get_strategy("multi_worker")


def test_learns_separable_data(tmp_path):
    cfg = TrainConfig(epochs=8, batch_size=8, learning_rate=1e-2)
    result = train_model("tiny", colour_dataset(64), cfg, tmp_path, 32, augment=False,
                         progress=False, build_fn=tiny_model)
    assert result.history[-1]["val_accuracy"] > 0.9
    test = colour_dataset(64, seed=1).splits["test"]
    logits = result.model.predict(test.images.astype(np.float32) / 255, verbose=0)
    assert (logits.argmax(1) == test.labels).mean() > 0.9
    assert (tmp_path / "model.keras").is_file()
    from tfuav.train.loop import load_model
    reloaded = load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(reloaded.predict(test.images / 255, verbose=0), logits, atol=1e-5)


def test_resume_continues(tmp_path, capsys):
    data = colour_dataset()
    cfg = TrainConfig(epochs=2, batch_size=8, lr_decay=0.5, lr_decay_every=1)
    first = train_model("tiny", data, cfg, tmp_path, 32, augment=False, progress=False,
                        build_fn=tiny_model)
    assert (first.epochs_run, first.resumed_from) == (2, 0)
    cfg.epochs = 4
    second = train_model("tiny", data, cfg, tmp_path, 32, resume=True, augment=False,
                         progress=False, build_fn=tiny_model)
    assert (second.epochs_run, second.resumed_from) == (2, 2)
    assert [h["epoch"] for h in second.history] == [1, 2, 3, 4]
    assert second.history[:2] == first.history
    # the lr schedule continues from epoch 3, not from the start
    assert [h["lr"] for h in second.history] == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4])
    assert second.model.optimizer.iterations.numpy() == 4 * 4


def test_resume_without_checkpoint_starts_fresh(tmp_path, capsys):
    cfg = TrainConfig(epochs=1, batch_size=8)
    result = train_model("tiny", colour_dataset(), cfg, tmp_path, 32, resume=True,
                         augment=False, progress=False, build_fn=tiny_model)
    assert result.resumed_from == 0 and result.epochs_run == 1
    assert "starting fresh" in capsys.readouterr().out


class Crash(keras.callbacks.Callback):
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 2 and batch == 1:
            raise RuntimeError("killed")

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch


def test_killed_run_resumes_from_last_checkpoint(tmp_path):
    data = colour_dataset()
    cfg = TrainConfig(epochs=3, batch_size=8)
    with pytest.raises(RuntimeError, match="killed"):
        train_model("tiny", data, cfg, tmp_path, 32, augment=False, progress=False,
                    build_fn=tiny_model, callbacks=[Crash()])
    assert not (tmp_path / "model.keras").exists()
    assert [h["epoch"] for h in json.loads((tmp_path / "checkpoints/history.json").read_text())] == [1, 2]
    resumed = train_model("tiny", data, cfg, tmp_path, 32, resume=True, augment=False,
                          progress=False, build_fn=tiny_model)
    assert (resumed.epochs_run, resumed.resumed_from) == (1, 2)
    # identical to an uninterrupted run: same data order per epoch, restored optimizer state
    straight = train_model("tiny", data, cfg, tmp_path / "straight", 32, augment=False,
                           progress=False, build_fn=tiny_model)
    for a, b in zip(resumed.model.get_weights(), straight.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-5)


MIRRORED_SCRIPT = textwrap.dedent("""
    import tfuav, sys
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from tfuav.config import TrainConfig
    from tfuav.data import Dataset, Split
    from tfuav.models import build_model
    from tfuav.train import loop, train_model

    out = sys.argv[1]
    tf.keras.utils.set_random_seed(0)
    init = build_model("glimmernet", (64, 64, 3), 2).get_weights()

    def build():
        model = build_model("glimmernet", (64, 64, 3), 2)
        model.set_weights(init)
        return model

    # Each batch of 8 is 4 distinct images twice ([a b c d a b c d]) and the order is not
    # shuffled: each of the two replicas then sees the 4 distinct images, so its per-replica
    # BatchNorm statistics equal the single device's statistics over the batch of 8.
    rng = np.random.default_rng(0)
    uniq = rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    ylab = np.array([0, 1, 1, 0, 1, 0, 0, 1])
    idx = np.concatenate([[0, 1, 2, 3, 0, 1, 2, 3], [4, 5, 6, 7, 4, 5, 6, 7]])
    train = Split(images=uniq[idx], labels=ylab[idx].astype(np.int64))
    data = Dataset(class_names=["a", "b"], splits={"train": train}, source="test")
    loop._epoch_order = lambda n, seed, epoch: np.arange(n)

    results = {}
    for strategy in ("default", "mirrored"):
        cfg = TrainConfig(epochs=2, batch_size=8, learning_rate=1e-4, strategy=strategy)
        r = train_model("glimmernet", data, cfg, f"{out}/{strategy}", 64, augment=False,
                        progress=False, build_fn=build)
        results[strategy] = r
        weights = {w.name: w.numpy() for w in r.model.weights}
        np.savez(f"{out}/{strategy}.npz", loss=[h["loss"] for h in r.history], **weights)
    import json
    print("REPLICAS", json.dumps(tf.distribute.MirroredStrategy(
        [d.name for d in tf.config.list_logical_devices("CPU")]).num_replicas_in_sync))
""")


@pytest.mark.slow
def test_mirrored_matches_single_device(tmp_path):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True,
                          text=True, timeout=600, env={k: v for k, v in os.environ.items() if k != "TF_CONFIG"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "REPLICAS 2" in proc.stdout
    single, mirrored = np.load(tmp_path / "default.npz"), np.load(tmp_path / "mirrored.npz")
    # Same function, same data, same initial weights: only the float summation order differs
    # (per-replica partial sums + all-reduce vs one batch reduction), a relative error of
    # ~1e-6 per step. After 4 RMSprop steps of lr 1e-4 the weights have moved by at most
    # 4 * lr * ~3 (RMSprop's first steps are ~lr/sqrt(1 - rho)); a difference 100x below that
    # is float noise, not a different algorithm (a missing all-reduce or wrong loss scaling
    # changes the updates by a factor ~2 and fails this).
    # Exception: the biases of convolutions followed by BatchNorm have an exactly-zero true
    # gradient (BN subtracts the mean), so their computed gradient is pure rounding noise, which
    # RMSprop normalises into ~lr-sized steps of random sign; they are compared at that scale.
    np.testing.assert_allclose(single["loss"], mirrored["loss"], rtol=1e-4)
    checked = 0
    for key in single.files:
        if key == "loss":
            continue
        noise_only = key.endswith("bias:0") and not key.startswith("head_fc")
        atol = 4 * 1e-4 * 3 if noise_only else 1.2e-5
        # Moving variances use the unbiased batch variance, n / (n - 1) with n = 4*H*W per
        # replica vs 8*H*W on one device: up to ~1% per update at the 4x4 stages, times the
        # BN momentum 0.1.
        rtol = 5e-3 if key.endswith("moving_variance:0") else 1e-3
        np.testing.assert_allclose(single[key], mirrored[key], atol=atol, rtol=rtol, err_msg=key)
        checked += not noise_only
    assert checked > 100
