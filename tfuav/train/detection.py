"""Training of the CenterNet-style detectors (uavlite) from scratch.

Optimiser: the classifiers' RMSprop (rho, momentum and decoupled weight decay from the
TrainConfig; biases, norm gamma/beta and connection gates not decayed) under a learning-rate
schedule made for a short run from scratch: a linear warm-up from a tenth of the peak over the
first epoch, then a cosine decay to 5 % of the peak at the last step. Recommended: peak 3e-3,
batch 32 (detection_train_config()). Measured on the synthetic scenes at 64x64, 700 training
images, 40 epochs on 2 CPU cores (test AP50): RMSprop + momentum 0.9 at 3e-4 / 1e-3 / 3e-3 /
1e-2 gave 0.14 / 0.18 / 0.23 / 0.22; Adam(W) at 3e-3 / 8e-3 / 1.6e-2 / 3e-2 / 6e-2 gave
0.05 / 0.15 / 0.17 / 0.18 / 0.17.

Targets: CenterNet's Gaussian radius rule gives objects under about two grid cells a radius
of 0, a single positive cell whose neighbours count as full negatives; at 64x64 that is nearly
every object, so the trainer floors the radius at MIN_RADIUS = 1 (a soft ring of 0.14 around
each centre), which trained to a higher AP50 here (0.10 against 0.07 in one comparison).

Each epoch visits the training split in a permutation seeded by (train_cfg.seed, epoch); the
augmenter is seeded by train_cfg.seed, so a run repeats its data exactly. The model's initial
weights are the caller's (keras.utils.set_random_seed before building it).
"""
import math
import sys
import time

import numpy as np
import tensorflow as tf

from tfuav.errors import TfuavError
from tfuav.losses.centernet import centernet_losses, encode_targets

keras = tf.keras

WARMUP_EPOCHS = 1
FINAL_LR_FRACTION = 0.05
NO_DECAY = ["bias", "gamma", "beta", "scale"]
DETECTION_LEARNING_RATE = 3e-3
DETECTION_BATCH_SIZE = 32
MIN_RADIUS = 1
LOSS_KEYS = ("total", "heatmap", "size", "offset")


def detection_train_config(**overrides):
    """The TrainConfig this module's docstring recommends (batch 32, learning rate
    DETECTION_LEARNING_RATE), with `overrides` applied."""
    from tfuav.config import TrainConfig
    values = {"batch_size": DETECTION_BATCH_SIZE, "learning_rate": DETECTION_LEARNING_RATE,
              **overrides}
    return TrainConfig(**values)


def detector_geometry(model, dataset):
    """(image_size, stride, num_classes) of a detector and a data set that must match it."""
    _, height, width, _ = model.input_shape
    _, _, grid_w, channels = model.output_shape
    num_classes = int(channels) - 4
    images = dataset.splits["train"].images
    if tuple(images.shape[1:3]) != (height, width):
        raise TfuavError(f"the data set's images are {images.shape[1]}x{images.shape[2]}, the "
                         f"model takes {height}x{width}")
    if num_classes != dataset.num_classes:
        raise TfuavError(f"the model detects {num_classes} classes, the data set has "
                         f"{dataset.num_classes} ({', '.join(dataset.class_names)})")
    return int(width), int(width) // int(grid_w), num_classes


def batch_targets(annotations, image_size, stride, num_classes):
    """float32 [N, H', W', C + 5] for a list of annotations; ignored objects are left out."""
    out = []
    for ann in annotations:
        keep = ~np.asarray(ann.get("ignore", np.zeros(len(ann["boxes"]), bool)), bool)
        out.append(encode_targets(np.asarray(ann["boxes"])[keep], np.asarray(ann["labels"])[keep],
                                  image_size, stride, num_classes, min_radius=MIN_RADIUS))
    return np.stack(out)


def make_optimizer(cfg, steps_per_epoch, epochs):
    total = max(1, steps_per_epoch * epochs)
    warmup = min(steps_per_epoch * WARMUP_EPOCHS, total // 2)
    schedule = keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=cfg.learning_rate * 0.1 if warmup else cfg.learning_rate,
        decay_steps=total - warmup, alpha=FINAL_LR_FRACTION,
        warmup_target=cfg.learning_rate if warmup else None, warmup_steps=warmup)
    opt = keras.optimizers.RMSprop(learning_rate=schedule, rho=cfg.rho, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay or None)
    if cfg.weight_decay:
        opt.exclude_from_weight_decay(var_names=NO_DECAY)
    return opt, schedule


def epoch_batches(split, cfg, epoch, augmenter, image_size, stride, num_classes):
    """(preprocessed images, targets) batches of one epoch, in the order seeded by
    (cfg.seed, epoch), augmented by `augmenter` (or not, None)."""
    from tfuav.data import preprocess
    order = np.random.default_rng([cfg.seed, epoch]).permutation(len(split))
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start:start + cfg.batch_size]
        images, anns = split.images[idx], [split.annotations[i] for i in idx]
        if augmenter is not None:
            pairs = [augmenter(img, ann) for img, ann in zip(images, anns)]
            images = np.stack([p[0] for p in pairs])
            anns = [p[1] for p in pairs]
        yield (preprocess(images), batch_targets(anns, image_size, stride, num_classes))


def _bar(total, title, progress):
    from tqdm import tqdm
    return tqdm(total=total, desc=title, leave=False, unit="batch",
                disable=not (progress and sys.stderr.isatty()))


def train_detector(model, dataset, train_cfg, epochs, augment=True, progress=True):
    """Trains `model` on dataset.splits["train"] for `epochs` epochs (see the module docstring);
    batch size, learning rate, weight decay and seed come from `train_cfg` (a TrainConfig).
    Returns the history: one dict per epoch with epoch, lr (at its end), loss, heatmap_loss,
    size_loss, offset_loss, val_loss (None without a val split) and seconds."""
    cfg = train_cfg
    image_size, stride, num_classes = detector_geometry(model, dataset)
    split = dataset.splits["train"]
    if len(split) == 0:
        raise TfuavError("the training split is empty")
    steps = math.ceil(len(split) / cfg.batch_size)
    optimizer, schedule = make_optimizer(cfg, steps, epochs)
    augmenter = None
    if augment:
        from tfuav.data.augment import DetectionAugmenter
        augmenter = DetectionAugmenter(image_size, cfg.seed)

    @tf.function(reduce_retracing=True, autograph=False)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            losses = centernet_losses(y, model(x, training=True), num_classes)
            # the model's own losses, e.g. the network-slimming L1 penalty
            total = losses["total"] + tf.add_n(model.losses) if model.losses else losses["total"]
        grads = tape.gradient(total, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return losses

    @tf.function(reduce_retracing=True, autograph=False)
    def eval_step(x, y):
        return centernet_losses(y, model(x, training=False), num_classes)

    val = dataset.splits.get("val")
    val_batches = None
    if val is not None and len(val):
        val_batches = list(epoch_batches(val, cfg, 0, None, image_size, stride, num_classes))

    history = []
    for epoch in range(epochs):
        started = time.perf_counter()
        sums = dict.fromkeys(LOSS_KEYS, 0.0)
        seen = 0
        with _bar(steps, f"epoch {epoch + 1}/{epochs}", progress) as bar:
            for x, y in epoch_batches(split, cfg, epoch, augmenter, image_size, stride,
                                       num_classes):
                losses = train_step(tf.constant(x), tf.constant(y))
                for key in LOSS_KEYS:
                    sums[key] += float(losses[key]) * len(x)
                seen += len(x)
                bar.update(1)
                bar.set_postfix(loss=f"{float(losses['total']):.3f}")
        entry = {"epoch": epoch + 1, "lr": float(schedule(optimizer.iterations)),
                 "loss": sums["total"] / seen,
                 **{f"{k}_loss": sums[k] / seen for k in LOSS_KEYS[1:]},
                 "val_loss": None}
        if val_batches:
            total = sum(float(eval_step(tf.constant(x), tf.constant(y))["total"]) * len(x)
                        for x, y in val_batches)
            entry["val_loss"] = total / len(val)
        entry["seconds"] = time.perf_counter() - started
        history.append(entry)
        if progress:
            print(_epoch_line(entry, epochs), flush=True)
    return history


def _epoch_line(entry, epochs):
    val = f"  val_loss {entry['val_loss']:.4f}" if entry["val_loss"] is not None else ""
    return (f"epoch {entry['epoch']}/{epochs}  lr {entry['lr']:.2e}  loss {entry['loss']:.4f}  "
            f"(heatmap {entry['heatmap_loss']:.3f}, size {entry['size_loss']:.3f}, offset "
            f"{entry['offset_loss']:.3f}){val}  ({entry['seconds']:.0f}s)")
