"""Graph -> list of Steps (kernel calls), one per op, in the model's execution order."""
from dataclasses import dataclass

from tfuav.export.native import ops_conv, ops_eltwise, ops_misc
from tfuav.export.native.program import NativeExportError, unsupported

LOWERINGS = {
    "CONV_2D": ops_conv.lower_conv,
    "DEPTHWISE_CONV_2D": ops_conv.lower_depthwise,
    "FULLY_CONNECTED": ops_conv.lower_fully_connected,
    "TRANSPOSE_CONV": ops_conv.lower_transpose_conv,
    "BATCH_MATMUL": ops_conv.lower_batch_matmul,
    "ADD": ops_eltwise.lower_add_sub,
    "SUB": ops_eltwise.lower_add_sub,
    "MUL": ops_eltwise.lower_mul,
    "SQUARED_DIFFERENCE": ops_eltwise.lower_squared_difference,
    "RSQRT": ops_eltwise.lower_table,
    "DIV": ops_eltwise.lower_div,
    "MAXIMUM": ops_eltwise.lower_min_max,
    "MINIMUM": ops_eltwise.lower_min_max,
    "LOGISTIC": ops_eltwise.lower_table,
    "TANH": ops_eltwise.lower_table,
    "HARD_SWISH": ops_eltwise.lower_table,
    "RELU": ops_eltwise.lower_table,
    "RELU6": ops_eltwise.lower_table,
    "RELU_N1_TO_1": ops_eltwise.lower_table,
    "LEAKY_RELU": ops_eltwise.lower_table,
    "QUANTIZE": ops_eltwise.lower_table,
    "MAX_POOL_2D": ops_misc.lower_pool,
    "AVERAGE_POOL_2D": ops_misc.lower_pool,
    "MEAN": ops_misc.lower_mean,
    "SOFTMAX": ops_misc.lower_softmax,
    "L2_NORMALIZATION": ops_misc.lower_l2norm,
    "RESHAPE": ops_misc.lower_reshape,
    "SQUEEZE": ops_misc.lower_reshape,
    "EXPAND_DIMS": ops_misc.lower_reshape,
    "PAD": ops_misc.lower_pad,
    "PADV2": ops_misc.lower_pad,
    "CONCATENATION": ops_misc.lower_concatenation,
    "SPLIT": ops_misc.lower_split,
    "SPLIT_V": ops_misc.lower_split_v,
    "SLICE": ops_misc.lower_slice,
    "STRIDED_SLICE": ops_misc.lower_strided_slice,
    "TRANSPOSE": ops_misc.lower_transpose,
    "GATHER": ops_misc.lower_gather,
    "RESIZE_NEAREST_NEIGHBOR": ops_misc.lower_resize_nearest,
}

SUPPORTED_OPS = tuple(sorted(LOWERINGS))


@dataclass(frozen=True)
class NativeOptions:
    cache_bytes: int = 16384   # pointwise conv / FC row tiles are sized to fit this
    fc_requant: str = "float"  # the reference FULLY_CONNECTED's requantization (probe.py)


def lower_graph(graph, options=NativeOptions()):
    """One Step per op; raises NativeExportError naming the first op it cannot compile."""
    for where, indices in (("input", graph.inputs), ("output", graph.outputs)):
        for i in indices:
            t = graph.tensors[i]
            if t.dtype != "int8":
                raise NativeExportError(f"native engine: model {where} {t.name!r} is {t.dtype}; "
                                        "the generated entry point takes and returns int8")
    steps = []
    for op in graph.ops:
        lowering = LOWERINGS.get(op.name)
        if lowering is None:
            raise unsupported(op, "no native kernel for this op")
        for i in op.outputs:
            if graph.tensors[i].dtype != "int8":
                raise unsupported(op, f"output type {graph.tensors[i].dtype} (int8 only)")
        try:
            steps.append(lowering(op, graph, options))
        except NativeExportError:
            raise
        except (AttributeError, IndexError, KeyError, TypeError, ValueError,
                ZeroDivisionError) as exc:
            raise unsupported(op, f"{type(exc).__name__}: {exc}") from exc
    return steps
