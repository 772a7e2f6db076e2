"""Typed build configuration, loaded from YAML (configs/*.yaml) and overridable from the CLI."""
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import yaml

from tfuav.errors import TfuavError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"


@dataclass
class DataConfig:
    path: Optional[str] = None        # None: the embedded synthetic aerial-emergency scenes
    image_size: int = 64              # square side the images are resized to
    synthetic_per_class: int = 120    # images per class generated for the embedded default
    synthetic_scenes: int = 400       # detection scenes generated for the embedded default
    val_fraction: float = 0.15        # used when the folder has no val/ split
    test_fraction: float = 0.15       # used when the folder has no test/ split
    seed: int = 0
    strict: bool = False              # unreadable images are an error instead of a warning
    augment: bool = True


@dataclass
class ModelConfig:
    name: str = "glimmernet"


@dataclass
class TrainConfig:
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    lr_decay: float = 0.975           # lr = learning_rate * lr_decay ** floor(epoch / lr_decay_every)
    lr_decay_every: int = 2
    rho: float = 0.9
    momentum: float = 0.9
    weight_decay: float = 1e-5
    strategy: str = "default"         # default | mirrored | multi_worker
    seed: int = 0


@dataclass
class CompressConfig:
    prune_sparsity: float = 0.0       # target sparsity of magnitude pruning; 0 disables it
    prune_epochs: int = 2
    qat: bool = False                 # quantization-aware fine-tuning before conversion
    qat_epochs: int = 2
    prune_channels: bool = False      # structured channel pruning (network slimming + surgery)
    budget_macs: float = 0.5          # fraction of the model's MACs kept by channel pruning
    budget_latency_ms: Optional[float] = None  # instead: estimated latency on the target
    slimming_epochs: int = 2          # sparse training (L1 on BN and connection scales) first
    slimming_l1: float = 1e-4
    finetune_epochs: int = 2          # fine-tuning after the surgery
    lowrank_energy: Optional[float] = None  # SVD of 1x1 convolutions keeping this energy


@dataclass
class ConvertConfig:
    representative_samples: int = 100
    float_io: bool = False            # keep float32 input/output (the graph stays int8 inside)


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    compress: CompressConfig = field(default_factory=CompressConfig)
    convert: ConvertConfig = field(default_factory=ConvertConfig)

    def to_dict(self):
        return dataclasses.asdict(self)


def _apply(obj, values, where, source):
    if not isinstance(values, dict):
        raise TfuavError(f"{source}: '{where}' must be a mapping, got {type(values).__name__}")
    known = {f.name: f for f in dataclasses.fields(obj)}
    for key, value in values.items():
        path = f"{where}.{key}" if where else key
        if key not in known:
            raise TfuavError(f"{source}: unknown key '{path}' "
                             f"(expected one of: {', '.join(sorted(known))})")
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            _apply(current, value, path, source)
        else:
            setattr(obj, key, _coerce(value, current, known[key], path, source))


def _coerce(value, current, f, path, source):
    expected = f.type if isinstance(f.type, type) else type(current)
    if current is None or value is None:
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise TfuavError(f"{source}: '{path}' must be {expected.__name__}, got {value!r}")
    return value


def load_config(path=None, overrides=None):
    """Default config, updated by a YAML file, then by a dict of overrides."""
    config = Config()
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise TfuavError(f"config file not found: {path}")
        try:
            values = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise TfuavError(f"{path}: not valid YAML ({str(err).splitlines()[0]})") from None
        _apply(config, values, "", str(path))
    if overrides:
        _apply(config, overrides, "", "command line")
    return config


DEFAULT_BUILD_CONFIGS = {"classification": "default", "detection": "detection"}


def default_config_file(model_name=None):
    """The YAML a build of `model_name` starts from: configs/default.yaml for classifiers,
    configs/detection.yaml for detectors."""
    task = "classification"
    if model_name:
        from tfuav.models.registry import get_spec
        task = get_spec(model_name).task
    return CONFIG_DIR / f"{DEFAULT_BUILD_CONFIGS[task]}.yaml"


def named_config(name):
    """A config shipped in configs/ (e.g. 'quick' -> configs/quick.yaml)."""
    return load_config(CONFIG_DIR / f"{name}.yaml")
