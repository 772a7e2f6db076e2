"""Bit-exact cross-validation of int8 TFLite models: TFLite reference kernels vs TFLite Micro."""
from tfuav.validate.cross import (ALLOWANCES, ValidationResult, applicable_allowances,
                                  compare_outputs, cross_validate, make_validation_inputs)
from tfuav.validate.runtimes import (TflmRunError, find_arena_size, recorded_arena_size,
                                     run_reference, run_tflm)

__all__ = ["ALLOWANCES", "TflmRunError", "ValidationResult", "applicable_allowances",
           "compare_outputs", "cross_validate", "find_arena_size", "make_validation_inputs",
           "recorded_arena_size", "run_reference", "run_tflm"]
