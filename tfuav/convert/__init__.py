"""Keras -> int8 TFLite conversion, and checks on the converted graph.

Importing this package does not load TensorFlow; only `to_int8_tflite` does, when called.
"""
from tfuav.convert.graph_check import GraphCheckError, assert_graph_ok, check_graph
from tfuav.convert.inspect_tflite import op_details, tflite_info


def to_int8_tflite(model, representative, float_io=False):
    from tfuav.convert.tflite import to_int8_tflite as convert
    return convert(model, representative, float_io=float_io)


__all__ = ["GraphCheckError", "assert_graph_ok", "check_graph", "op_details", "tflite_info",
           "to_int8_tflite"]
