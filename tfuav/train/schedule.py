"""Step-decayed learning rate."""
import math


def lr_for_epoch(epoch, cfg):
    """Learning rate of 0-based `epoch`: learning_rate * lr_decay ** floor(epoch / lr_decay_every)."""
    return cfg.learning_rate * cfg.lr_decay ** math.floor(epoch / max(1, cfg.lr_decay_every))
