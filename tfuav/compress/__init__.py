"""Compression before conversion: magnitude pruning and quantization-aware fine-tuning."""
from tfuav.compress.pruning import prune_magnitude, sparsity_report
from tfuav.compress.qat import fold_batchnorm, quantize_aware, quantize_scope

__all__ = ["fold_batchnorm", "prune_magnitude", "quantize_aware", "quantize_scope",
           "sparsity_report"]
