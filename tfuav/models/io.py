"""Loading Keras models the user brings (.h5 / .keras), with tfuav's custom layers known."""
from pathlib import Path

from tfuav.errors import TfuavError

KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")


def load_keras_model(path):
    import tensorflow as tf

    from tfuav.models.layers import CUSTOM_OBJECTS
    path = Path(path)
    if not path.is_file():
        raise TfuavError(f"model file not found: {path}")
    if path.suffix.lower() not in KERAS_SUFFIXES:
        raise TfuavError(f"{path}: expected a Keras model file ({', '.join(KERAS_SUFFIXES)})")
    try:
        return tf.keras.models.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False)
    except Exception as err:  # h5py/zipfile/Keras raise many types for a bad file
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TfuavError(f"{path}: cannot load as a Keras model ({first})") from None
