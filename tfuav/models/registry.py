"""Models registered by name; each entry builds a Keras model at its default input size."""
from dataclasses import dataclass
from typing import Callable

from tfuav.errors import TfuavError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable  # build(input_shape, num_classes) -> keras.Model
    default_input_shape: tuple
    default_num_classes: int
    description: str


_REGISTRY: dict = {}


def register(name, default_input_shape, default_num_classes, description):
    def wrap(build):
        _REGISTRY[name] = ModelSpec(name, build, tuple(default_input_shape),
                                    default_num_classes, description)
        return build
    return wrap


def model_names():
    _load_all()
    return sorted(_REGISTRY)


def get_spec(name):
    _load_all()
    if name not in _REGISTRY:
        raise TfuavError(f"unknown model {name!r} (choose from: {', '.join(sorted(_REGISTRY))})")
    return _REGISTRY[name]


def build_model(name, input_shape=None, num_classes=None):
    spec = get_spec(name)
    return spec.build(tuple(input_shape or spec.default_input_shape),
                      num_classes or spec.default_num_classes)


def _load_all():
    # Importing a model module registers it; the imports stay here so that the registry
    # (and `tfuav models`) only pull TensorFlow in when a model is asked for.
    from tfuav.models import glimmernet, takunet  # noqa: F401
