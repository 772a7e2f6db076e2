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
    # "default", plus "coral" where build(input_shape, num_classes, form="coral") gives the
    # Edge TPU form: the same function and weights in ops the Edge TPU compiler maps.
    forms: tuple = ("default",)
    # "classification" (one score per class) or "detection" (a tfuav.runtime.detect head)
    task: str = "classification"
    # the registered model with the same network in ops a full-integer target runs, for a model
    # whose int8 graph keeps float ops (e.g. deformable sampling)
    plain_variant: str = None


_REGISTRY: dict = {}
FORMS = ("default", "coral")


def register(name, default_input_shape, default_num_classes, description, forms=("default",),
             task="classification", plain_variant=None):
    def wrap(build):
        _REGISTRY[name] = ModelSpec(name, build, tuple(default_input_shape),
                                    default_num_classes, description, tuple(forms), task,
                                    plain_variant)
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


def build_model(name, input_shape=None, num_classes=None, form="default"):
    """The registered model `name`; form="coral" builds its Edge TPU form (batch fixed to 1,
    Edge TPU-friendly layers; same weights, same float function)."""
    spec = get_spec(name)
    if form not in FORMS:
        raise TfuavError(f"unknown model form {form!r} (choose from: {', '.join(FORMS)})")
    if form not in spec.forms:
        raise TfuavError(f"model {name!r} has no {form} form (it has: {', '.join(spec.forms)})")
    args = (tuple(input_shape or spec.default_input_shape), num_classes or spec.default_num_classes)
    return spec.build(*args) if form == "default" else spec.build(*args, form=form)


def coral_form(model, name=None):
    """The coral form of a zoo model built in its default form (or loaded from a file), with
    its weights: layers are matched by name; a grouped aggregator kernel becomes the dense
    kernel of PermutedGroupedConv1x1, every other weight is copied as it is.

    name: the registered model name (default: the Keras model's own name)."""
    name = name or model.name
    shape = tuple(model.input_shape[1:])
    classes = int(model.output_shape[-1])
    coral = build_model(name, shape, classes, form="coral")
    for layer in coral.layers:
        if not layer.weights:
            continue
        try:
            source = model.get_layer(layer.name)
        except ValueError:
            raise TfuavError(f"model {model.name!r} has no layer {layer.name!r}: "
                             f"not a {name} model") from None
        if hasattr(layer, "set_grouped_weights"):
            layer.set_grouped_weights(*source.get_weights())
        else:
            layer.set_weights(source.get_weights())
    return coral


def _load_all():
    # Importing a model module registers it; the imports stay here so that the registry
    # (and `tfuav models`) only pull TensorFlow in when a model is asked for.
    from tfuav.models import glimmernet, takunet, uavlite  # noqa: F401
