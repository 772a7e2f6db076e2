"""The first subgraph of a .tflite flatbuffer as plain Python objects: tensors (shape, type,
quantization, constant data) and ops in execution order."""
from dataclasses import dataclass, field

import numpy as np

from tfuav.convert.inspect_tflite import load_model, op_name, schema, tensor_name, type_name
from tfuav.errors import TfuavError

NUMPY_TYPES = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
               "int64": np.int64, "float32": np.float32, "bool": np.bool_}


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple
    dtype: str
    scale: np.ndarray = None       # float32, one per channel (or one)
    zero_point: np.ndarray = None  # int64, same length as scale
    axis: int = 0                  # quantized dimension
    data: np.ndarray = None        # constant contents, shaped; None for activations

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self):
        return self.size * np.dtype(NUMPY_TYPES.get(self.dtype, np.uint8)).itemsize

    @property
    def is_const(self):
        return self.data is not None

    @property
    def per_tensor(self):
        return self.scale is not None and len(self.scale) == 1

    def qparams(self):
        """(scale as float32, zero point) of a per-tensor quantized tensor."""
        return np.float32(self.scale[0]), int(self.zero_point[0])


@dataclass
class Op:
    index: int
    name: str
    inputs: list
    outputs: list
    options: object = None
    version: int = 1
    extra: dict = field(default_factory=dict)

    def where(self):
        return f"op {self.index} ({self.name})"


@dataclass
class Graph:
    tensors: list
    ops: list
    inputs: list
    outputs: list

    def consumers(self, tensor_index):
        return [op for op in self.ops if tensor_index in op.inputs]

    def producer(self, tensor_index):
        for op in self.ops:
            if tensor_index in op.outputs:
                return op
        return None


def read_graph(model_bytes):
    """Graph of the model's first subgraph; raises TfuavError for more than one subgraph
    (control flow) or an unreadable flatbuffer."""
    model = load_model(model_bytes)
    if len(model.subgraphs) != 1:
        raise TfuavError(f"the model has {len(model.subgraphs)} subgraphs; the native engine "
                         "compiles single-subgraph models (no control flow)")
    sg = model.subgraphs[0]
    tensors = [_tensor(model, model_bytes, i, t) for i, t in enumerate(sg.tensors or [])]
    ops = []
    for i, op in enumerate(sg.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        ops.append(Op(index=i, name=op_name(model, op),
                      inputs=[int(k) for k in (op.inputs if op.inputs is not None else [])],
                      outputs=[int(k) for k in (op.outputs if op.outputs is not None else [])],
                      options=op.builtinOptions, version=int(code.version)))
    return Graph(tensors=tensors, ops=ops, inputs=[int(k) for k in sg.inputs],
                 outputs=[int(k) for k in sg.outputs])


def _tensor(model, model_bytes, index, t):
    shape = tuple(int(d) for d in (t.shape if t.shape is not None else []))
    dtype = type_name(t)
    scale = zero_point = None
    q = t.quantization
    if q is not None and q.scale is not None and len(q.scale):
        scale = np.asarray(q.scale, dtype=np.float32)
        zps = q.zeroPoint if q.zeroPoint is not None and len(q.zeroPoint) else [0]
        zero_point = np.broadcast_to(np.asarray(zps, dtype=np.int64), scale.shape).copy()
    data = _constant(model, model_bytes, t, shape, dtype)
    return Tensor(index=index, name=tensor_name(t), shape=shape, dtype=dtype, scale=scale,
                  zero_point=zero_point, axis=int(q.quantizedDimension) if q else 0, data=data)


def _constant(model, model_bytes, t, shape, dtype):
    if not t.buffer or t.buffer >= len(model.buffers or []):
        return None
    buf = model.buffers[t.buffer]
    if buf.data is not None and len(buf.data):
        raw = np.asarray(buf.data, dtype=np.uint8).tobytes()
    elif getattr(buf, "offset", 0) > 1:
        raw = bytes(model_bytes[buf.offset:buf.offset + buf.size])
    else:
        return None
    if dtype not in NUMPY_TYPES:
        raise TfuavError(f"tensor {tensor_name(t)!r}: constant of type {dtype} is not supported "
                         "by the native engine")
    return np.frombuffer(raw, dtype=NUMPY_TYPES[dtype]).reshape(shape).copy()


ACTIVATIONS = {v: k for k, v in vars(schema.ActivationFunctionType).items()
               if not k.startswith("_")}
PADDINGS = {v: k for k, v in vars(schema.Padding).items() if not k.startswith("_")}
