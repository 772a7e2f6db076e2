"""Keras -> float32 ONNX through tf2onnx, checked with onnxruntime against the Keras model.

The ONNX graph has a dynamic batch dimension (the other input dimensions are the model's own),
keeps the Keras input and output names, and computes in float32. Nothing is quantized: this is
the model for ONNX runtimes (onnxruntime on a Raspberry Pi or a ground station), not for the
int8 TFLite targets.

Grouped convolutions (the aggregators of GlimmerNet and TakuNet) need one extra step. tf-keras
runs a `Conv2D(groups > 1)` through a nested `tf.function(jit_compile=True)`, which TensorFlow
marks as never to be inlined; tf2onnx's graph optimizer then leaves it as an opaque
`PartitionedCall` that no ONNX runtime can run. The frozen graph is therefore cleared of the
XLA-only marks before tf2onnx inlines the functions, and the grouped `Conv2D` inside becomes an
ONNX `Conv` with its `group` attribute. The model itself is not touched.

Importing this module loads neither TensorFlow nor tf2onnx; the functions do, when called.
"""
import logging
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from tfuav.errors import TfuavError

# Marks on a nested function (and on the calls to it) that keep grappler from inlining it.
_NO_INLINE_ATTRS = ("_XlaMustCompile", "_noinline", "_XlaCompile", "_XlaScope")
_EXTRA_HINT = "ONNX export needs the onnx extra: pip install 'tfuav[onnx]'"


def to_onnx(model, opset=None):
    """A tf.keras model as serialized float32 ONNX bytes.

    Dynamic batch: every input is (batch, *the model's other dimensions), the batch dimension
    named ``batch``. Input and output names are the Keras ``model.input_names`` /
    ``model.output_names``. ``opset`` None means tf2onnx's default opset.
    Raises TfuavError when an input is not float32 or a TensorFlow op has no ONNX conversion.
    """
    tf, tf2onnx = _import_tf2onnx()
    from tensorflow.python.framework.convert_to_constants import \
        convert_variables_to_constants_v2

    for t in model.inputs:
        if t.dtype != tf.float32:
            raise TfuavError(f"ONNX export takes float32 inputs; input {t.name!r} is {t.dtype.name}")
    input_names = list(model.input_names)
    output_names = list(model.output_names)
    specs = [tf.TensorSpec((None,) + tuple(t.shape[1:]), tf.float32, name=f"tfuav_onnx_in{i}")
             for i, t in enumerate(model.inputs)]

    def forward(*xs):
        out = model(list(xs) if len(xs) > 1 else xs[0], training=False)
        return tf.nest.flatten(out)

    concrete = tf.function(forward).get_concrete_function(*specs)
    frozen = convert_variables_to_constants_v2(concrete, lower_control_flow=False,
                                               aggressive_inlining=True)
    graph_def = frozen.graph.as_graph_def(add_shapes=True)
    _allow_inlining(graph_def)

    tf_inputs = [t.name for t in frozen.inputs]
    tf_outputs = [t.name for t in frozen.outputs]
    if len(tf_outputs) != len(output_names):
        output_names = [f"output_{i}" for i in range(len(tf_outputs))]
    rename = dict(zip(tf_inputs, input_names))
    rename.update(zip(tf_outputs, output_names))
    with _quiet_tf2onnx():
        try:
            proto, _ = tf2onnx.convert.from_graph_def(
                graph_def, name=model.name, input_names=tf_inputs, output_names=tf_outputs,
                opset=opset, tensors_to_rename=rename)
        except Exception as err:
            raise TfuavError(f"cannot convert {model.name!r} to ONNX: {_first_line(err)}") from None
    _check_ops(proto, model.name)
    for value in proto.graph.input:  # name the dynamic dimension for readers of the graph
        dim = value.type.tensor_type.shape.dim
        if dim and not dim[0].HasField("dim_value"):
            dim[0].dim_param = "batch"
    return proto.SerializeToString()


def verify_onnx(onnx_bytes, model, inputs, atol=1e-4):
    """Run `onnx_bytes` in onnxruntime (CPUExecutionProvider) and `model` in Keras on the same
    float32 `inputs` (one array, or a list with one array per model input) and compare.

    Returns {"ok", "atol", "max_abs_diff", "worst_output", "samples", "outputs": [{"name",
    "shape", "max_abs_diff", "mean_abs_diff", "max_abs_keras", "argmax_agreement"}]}.
    ``ok`` is true when every output has the Keras shape and max_abs_diff <= atol.
    """
    ort = _import_onnxruntime()
    xs = [np.asarray(x, np.float32) for x in (inputs if isinstance(inputs, (list, tuple))
                                              else [inputs])]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(onnx_bytes, sess_options=options,
                                   providers=["CPUExecutionProvider"])
    feed = {i.name: x for i, x in zip(session.get_inputs(), xs)}
    got = session.run(None, feed)
    want = model(xs if len(xs) > 1 else xs[0], training=False)
    want = [np.asarray(w) for w in (want if isinstance(want, (list, tuple)) else [want])]

    outputs = []
    for meta, g, w in zip(session.get_outputs(), got, want):
        row = {"name": meta.name, "shape": list(w.shape), "max_abs_keras": float(np.abs(w).max())}
        if g.shape != w.shape:
            row.update(max_abs_diff=float("inf"), mean_abs_diff=float("inf"),
                       argmax_agreement=0.0, onnx_shape=list(g.shape))
        else:
            diff = np.abs(g.astype(np.float64) - w.astype(np.float64))
            row.update(max_abs_diff=float(diff.max()) if diff.size else 0.0,
                       mean_abs_diff=float(diff.mean()) if diff.size else 0.0,
                       argmax_agreement=float(np.mean(g.argmax(-1) == w.argmax(-1)))
                       if w.ndim >= 2 and w.shape[-1] > 1 else 1.0)
        outputs.append(row)
    if len(got) != len(want):
        outputs.append({"name": "<output count>", "shape": [len(want)], "onnx_shape": [len(got)],
                        "max_abs_diff": float("inf"), "mean_abs_diff": float("inf"),
                        "max_abs_keras": 0.0, "argmax_agreement": 0.0})
    worst = max(outputs, key=lambda r: r["max_abs_diff"])
    return {"ok": worst["max_abs_diff"] <= atol, "atol": atol,
            "max_abs_diff": worst["max_abs_diff"], "worst_output": worst["name"],
            "samples": int(xs[0].shape[0]), "outputs": outputs}


def export_onnx_file(model_file, out_path, opset=None, samples=4, atol=1e-4, seed=0):
    """Load a Keras .h5/.keras file, convert it to ONNX, check it against Keras on `samples`
    deterministic uniform [0, 1] inputs, and only then write `out_path` (atomically).

    Returns {"path", "bytes", "opset", "inputs", "outputs", "verify"}. Raises TfuavError (one
    line) when the file cannot be loaded or converted or the ONNX model computes something else.
    """
    from tfuav.fileio import atomic_write_bytes
    from tfuav.models.io import load_keras_model

    model_file = Path(model_file)
    model = load_keras_model(model_file)
    shapes = [tuple(t.shape[1:]) for t in model.inputs]
    for name, shape in zip(model.input_names, shapes):
        if any(d is None for d in shape):
            raise TfuavError(f"{model_file}: input {name!r} has an undefined dimension "
                             f"{(None,) + shape}; ONNX export needs a fixed input size")
    data = to_onnx(model, opset=opset)
    rng = np.random.default_rng(seed)
    inputs = [rng.uniform(0, 1, (samples,) + s).astype(np.float32) for s in shapes]
    try:
        report = verify_onnx(data, model, inputs, atol=atol)
    except Exception as err:
        raise TfuavError(f"{model_file}: onnxruntime cannot run the exported model "
                         f"({_first_line(err)})") from None
    if not report["ok"]:
        worst = next(r for r in report["outputs"] if r["name"] == report["worst_output"])
        if "onnx_shape" in worst:
            raise TfuavError(f"{model_file}: ONNX output {worst['name']!r} has shape "
                             f"{worst['onnx_shape']}, Keras {worst['shape']}")
        raise TfuavError(f"{model_file}: ONNX output {worst['name']!r} differs from Keras by up "
                         f"to {worst['max_abs_diff']:.3g} (allowed {atol:g}, outputs up to "
                         f"{worst['max_abs_keras']:.3g})")
    atomic_write_bytes(out_path, data)
    return {"path": str(out_path), "bytes": len(data), "opset": _opset(data),
            "inputs": {n: [None, *s] for n, s in zip(model.input_names, shapes)},
            "outputs": list(model.output_names), "verify": report}


def _allow_inlining(graph_def):
    """Drop the XLA / no-inline marks from the nested functions and the calls to them."""
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        for key in _NO_INLINE_ATTRS:
            if key in function.attr:
                del function.attr[key]
        nodes.extend(function.node_def)
    for node in nodes:
        for key in _NO_INLINE_ATTRS:
            if key in node.attr:
                del node.attr[key]


def _check_ops(proto, model_name):
    """tf2onnx leaves the TensorFlow ops it cannot convert in the graph; name them."""
    import onnx.defs
    custom = {o.domain for o in proto.opset_import} - {"", "ai.onnx", "ai.onnx.ml"}
    left = sorted({n.op_type for n in proto.graph.node
                   if n.domain not in custom and not onnx.defs.has(n.op_type, n.domain or "")})
    if left:
        where = next(n.name for n in proto.graph.node if n.op_type == left[0])
        raise TfuavError(f"cannot convert {model_name!r} to ONNX: TensorFlow op(s) with no ONNX "
                         f"conversion: {', '.join(left)} (first at {where})")


def _opset(data):
    import onnx
    model = onnx.load_from_string(data)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


@contextmanager
def _quiet_tf2onnx():
    """tf2onnx logs every step at INFO; unsupported ops are reported by _check_ops instead."""
    logger = logging.getLogger("tf2onnx")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def _import_tf2onnx():
    import tensorflow as tf
    try:
        import tf2onnx
    except ImportError:
        raise TfuavError(_EXTRA_HINT) from None
    return tf, tf2onnx


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise TfuavError(_EXTRA_HINT) from None
    return onnxruntime


def _first_line(err):
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
