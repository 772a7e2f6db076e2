"""Training loop: the RMSprop recipe on tf.data pipelines, with per-epoch checkpoints.

Each epoch is one `model.fit(initial_epoch=e, epochs=e + 1)` call: the epoch's data order
(a permutation seeded by cfg.seed + epoch) and its learning rate are then fixed by the epoch
number alone, so a resumed run sees exactly what an uninterrupted run would have seen.
"""
import dataclasses
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import tensorflow as tf

from tfuav.models.layers import CUSTOM_OBJECTS
from tfuav.train.schedule import lr_for_epoch
from tfuav.train.strategy import get_strategy

keras = tf.keras

CHECKPOINT_DIR = "checkpoints"
MODEL_FILE = "model.keras"
# Decoupled weight decay is not applied to these (biases, BatchNorm, GRN gamma/beta).
NO_DECAY = ["bias", "gamma", "beta"]


@dataclasses.dataclass
class TrainResult:
    model: keras.Model
    history: list           # per epoch: epoch (1-based), loss, accuracy, val_loss, val_accuracy, lr
    epochs_run: int         # epochs trained by this call
    resumed_from: int       # epochs already done when this call started (0: fresh)
    model_path: Optional[str] = None


def _preprocess(images):
    from tfuav.data import preprocess
    return np.asarray(preprocess(images), dtype=np.float32)


def _epoch_order(n, seed, epoch):
    """Shuffled sample order of one epoch (a function of seed and epoch only)."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def _make_augmenter(image_size, seed):
    from tfuav.data import build_augmenter
    return build_augmenter(image_size, seed)


def _train_dataset(split, cfg, epoch, augmenter):
    order = _epoch_order(len(split.labels), cfg.seed, epoch)
    images = np.asarray(split.images)[order]
    if augmenter is not None:
        images = np.stack([augmenter(img) for img in images])
    x = _preprocess(images)
    y = np.asarray(split.labels, dtype=np.int64)[order]
    return _batched(x, y, cfg.batch_size)


def _batched(x, y, batch_size):
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
    options = tf.data.Options()
    # Batches are already built from a seeded order; shard by data under any strategy.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(2)


def _val_dataset(dataset, cfg):
    split = dataset.splits.get("val") if hasattr(dataset.splits, "get") else None
    if split is None or len(split.labels) == 0:
        return None
    return _batched(_preprocess(split.images), np.asarray(split.labels, np.int64), cfg.batch_size)


def make_optimizer(cfg):
    # Weight decay is decoupled (AdamW-style, applied by the optimizer as w -= lr * wd * w)
    # rather than an L2 loss term: it needs no change to the model (so it works unchanged on
    # pruning/QAT-wrapped models and under every distribution strategy), and RMSprop's
    # per-weight gradient normalisation would otherwise rescale an L2 gradient per weight.
    opt = keras.optimizers.RMSprop(learning_rate=lr_for_epoch(0, cfg), rho=cfg.rho,
                                   momentum=cfg.momentum, weight_decay=cfg.weight_decay or None)
    if cfg.weight_decay:
        opt.exclude_from_weight_decay(var_names=NO_DECAY)
    return opt


def compile_model(model, cfg):
    """Compiles `model` with the training recipe (call inside the strategy scope)."""
    model.compile(optimizer=make_optimizer(cfg),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


class _BatchBar(keras.callbacks.Callback):
    """A progress bar over the batches of one epoch (shown on a terminal only)."""

    def __init__(self, title):
        super().__init__()
        self.title = title
        self.bar = None

    def on_epoch_begin(self, epoch, logs=None):
        from tqdm import tqdm
        self.bar = tqdm(total=self.params.get("steps"), desc=self.title, leave=False,
                        disable=not sys.stderr.isatty(), unit="batch")

    def on_train_batch_end(self, batch, logs=None):
        self.bar.update(1)
        if logs and "loss" in logs:
            self.bar.set_postfix(loss=f"{logs['loss']:.3f}")

    def on_epoch_end(self, epoch, logs=None):
        self.bar.close()


def _epoch_line(entry, end, seconds):
    parts = [f"epoch {entry['epoch']}/{end}", f"lr {entry['lr']:.2e}"]
    parts += [f"{key} {entry[key]:.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
              if entry[key] is not None]
    return "  ".join(parts) + f"  ({seconds:.0f}s)"


def _run_epochs(model, dataset, cfg, start, end, augmenter, progress, callbacks, after_epoch=None):
    history = []
    val = _val_dataset(dataset, cfg)
    train = dataset.splits["train"]
    for epoch in range(start, end):
        lr = lr_for_epoch(epoch, cfg)
        model.optimizer.learning_rate.assign(lr)
        started = time.perf_counter()
        bar = [_BatchBar(f"epoch {epoch + 1}/{end}")] if progress else []
        logs = model.fit(_train_dataset(train, cfg, epoch, augmenter), validation_data=val,
                         initial_epoch=epoch, epochs=epoch + 1, verbose=0,
                         callbacks=bar + list(callbacks)).history
        entry = {"epoch": epoch + 1, "lr": float(lr)}
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            entry[key] = float(logs[key][-1]) if key in logs else None
        history.append(entry)
        if progress:
            print(_epoch_line(entry, end, time.perf_counter() - started), flush=True)
        if after_epoch is not None:
            after_epoch(epoch + 1, entry)
    return history


def fit_model(model, dataset, cfg, epochs, callbacks=(), augment=True, progress=True):
    """Fine-tunes `model` for `epochs` epochs with the training pipeline (lr schedule from epoch
    0). The model is compiled with the recipe unless it already is. Returns the history list."""
    if model.optimizer is None or not getattr(model, "_is_compiled", False):
        compile_model(model, cfg)
    augmenter = _make_augmenter(dataset.splits["train"].images.shape[1], cfg.seed) if augment else None
    return _run_epochs(model, dataset, cfg, 0, epochs, augmenter, progress, callbacks)


def save_model(model, path):
    """Saves in the tf-keras native format, atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)
    return path


def load_model(path):
    return keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)


def train_model(model_name, dataset, cfg, out_dir, image_size, resume=False, augment=True,
                progress=True, build_fn=None, callbacks=()):
    """Trains `model_name` (or `build_fn()`) on dataset.splits['train'], validating on 'val'.

    Checkpoints (weights, optimizer state, epoch number as the checkpoint number) go to
    out_dir/checkpoints after every epoch; resume=True continues after the last one. The final
    model is written to out_dir/model.keras.
    """
    out_dir = Path(out_dir)
    ckpt_dir = out_dir / CHECKPOINT_DIR
    keras.utils.set_random_seed(cfg.seed)
    strategy = get_strategy(cfg.strategy)
    num_classes = len(dataset.class_names)
    with strategy.scope():
        if build_fn is not None:
            model = build_fn()
        else:
            from tfuav.models import build_model
            model = build_model(model_name, (image_size, image_size, 3), num_classes)
        compile_model(model, cfg)
        # Optimizer slots exist before a restore, so that their state is restored too.
        model.optimizer.build(model.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer)
    history_file = ckpt_dir / "history.json"

    start, history = 0, []
    latest = tf.train.latest_checkpoint(str(ckpt_dir)) if ckpt_dir.is_dir() else None
    if resume and latest:
        checkpoint.restore(latest).assert_existing_objects_matched()
        start = int(latest.rsplit("-", 1)[-1])
        if history_file.is_file():
            history = [h for h in json.loads(history_file.read_text()) if h["epoch"] <= start]
        print(f"resuming from {latest} ({start} of {cfg.epochs} epochs done)")
    else:
        if resume:
            print(f"no checkpoint in {ckpt_dir}: starting fresh")
        if ckpt_dir.exists():
            shutil.rmtree(ckpt_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    manager = tf.train.CheckpointManager(checkpoint, str(ckpt_dir), max_to_keep=2)

    # The weights of the epoch with the lowest validation loss are the ones kept: on small
    # data sets the validation loss of RMSprop with momentum swings widely between epochs.
    best = tf.train.Checkpoint(model=model)
    best_prefix = str(ckpt_dir / "best")

    def after_epoch(epoch, entry):
        if entry["val_loss"] is not None and entry["val_loss"] <= min(
                [h["val_loss"] for h in history if h["val_loss"] is not None], default=np.inf):
            best.write(best_prefix)
        history.append(entry)
        manager.save(checkpoint_number=epoch)
        tmp = history_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(history, indent=1))
        os.replace(tmp, history_file)

    augmenter = _make_augmenter(image_size, cfg.seed) if augment else None
    run = _run_epochs(model, dataset, cfg, start, cfg.epochs, augmenter, progress,
                      callbacks, after_epoch)
    if tf.io.gfile.exists(best_prefix + ".index"):
        best.read(best_prefix).assert_existing_objects_matched()
    model_path = save_model(model, out_dir / MODEL_FILE)
    return TrainResult(model=model, history=history, epochs_run=len(run), resumed_from=start,
                       model_path=str(model_path))
