"""tfuav: Keras models for UAV vision, compressed and converted to int8 for the boards that fly."""
import os

# tensorflow-model-optimization needs Keras 2 (tf-keras); this must happen before TensorFlow loads.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
