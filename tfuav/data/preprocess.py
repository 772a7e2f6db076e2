"""Model input preprocessing shared by training, conversion and the TensorFlow-free Pi runtime.

The implementation lives in `tfuav.runtime.preprocess` (numpy only), so that the runtime feeds
a model exactly the tensors it was trained on.
"""
from tfuav.runtime.preprocess import preprocess

__all__ = ["preprocess"]
