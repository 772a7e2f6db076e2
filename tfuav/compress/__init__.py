"""Compression before conversion: magnitude pruning, structured (channel) pruning with exact
surgery, network-slimming training, low-rank pointwise factorization, quantization-aware
fine-tuning."""
from tfuav.compress.channels import ChannelPlan, analyze_channels
from tfuav.compress.lowrank import factorize_pointwise
from tfuav.compress.pruning import prune_magnitude, sparsity_report
from tfuav.compress.qat import fold_batchnorm, quantize_aware, quantize_scope
from tfuav.compress.search import estimate_latency_ms
from tfuav.compress.slimming import add_slimming_penalty, remove_slimming_penalty
from tfuav.compress.structured import format_table, prune_channels
from tfuav.compress.surgery import apply_plan, cut_connections

__all__ = ["ChannelPlan", "add_slimming_penalty", "analyze_channels", "apply_plan",
           "cut_connections", "estimate_latency_ms", "factorize_pointwise", "fold_batchnorm",
           "format_table", "prune_channels", "prune_magnitude", "quantize_aware",
           "quantize_scope", "remove_slimming_penalty", "sparsity_report"]
