"""Small .tflite flatbuffers built tensor by tensor and op by op (chosen shapes, types and
quantization): the probe of the installed TFLite reference kernels uses them, and so do the
native-engine tests."""
import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

_TYPES = {"int8": schema.TensorType.INT8, "int32": schema.TensorType.INT32,
          "float32": schema.TensorType.FLOAT32, "int64": schema.TensorType.INT64,
          "uint8": schema.TensorType.UINT8, "int16": schema.TensorType.INT16}
_NP = {"int8": np.int8, "int32": np.int32, "float32": np.float32, "int64": np.int64,
       "uint8": np.uint8, "int16": np.int16}
_ACT = {None: 0, "NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}


class ModelBuilder:
    """One subgraph built tensor by tensor and op by op; build() returns .tflite bytes."""

    def __init__(self):
        self.tensors, self.buffers, self.ops, self.codes = [], [schema.BufferT()], [], []

    def tensor(self, shape, dtype="int8", scale=None, zero_point=None, data=None, axis=0,
               name=None):
        t = schema.TensorT()
        t.shape = [int(d) for d in shape]
        t.type = _TYPES[dtype]
        t.name = name or f"t{len(self.tensors)}"
        if scale is not None:
            q = schema.QuantizationParametersT()
            q.scale = [float(s) for s in np.atleast_1d(scale)]
            zps = np.atleast_1d(zero_point if zero_point is not None else 0)
            q.zeroPoint = [int(z) for z in np.broadcast_to(zps, (len(q.scale),))]
            q.quantizedDimension = axis
            t.quantization = q
        if data is not None:
            buf = schema.BufferT()
            buf.data = list(np.asarray(data, dtype=_NP[dtype]).reshape(-1).tobytes())
            self.buffers.append(buf)
            t.buffer = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, values, dtype="int32"):
        values = np.asarray(values)
        return self.tensor(values.shape, dtype, data=values)

    def op(self, name, inputs, outputs, options=None, version=1):
        code = getattr(schema.BuiltinOperator, name)
        key = (code, version)
        if key not in [(c.builtinCode, c.version) for c in self.codes]:
            oc = schema.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = version
            self.codes.append(oc)
        op = schema.OperatorT()
        op.opcodeIndex = [(c.builtinCode, c.version) for c in self.codes].index(key)
        op.inputs, op.outputs = list(inputs), list(outputs)
        if options is not None:
            op.builtinOptionsType = getattr(schema.BuiltinOptions,
                                            type(options).__name__[:-1])
            op.builtinOptions = options
        self.ops.append(op)

    def build(self, inputs, outputs):
        sg = schema.SubGraphT()
        sg.tensors, sg.operators = self.tensors, self.ops
        sg.inputs, sg.outputs = list(inputs), list(outputs)
        model = schema.ModelT()
        model.version = 3
        model.operatorCodes, model.subgraphs, model.buffers = self.codes, [sg], self.buffers
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def options(kind, **fields):
    """A schema options object, e.g. options("Conv2D", padding=0, strideW=1, ...);
    activation= takes a name ('RELU6')."""
    opts = getattr(schema, f"{kind}OptionsT")()
    for key, value in fields.items():
        if key == "activation":
            key, value = "fusedActivationFunction", _ACT[value]
        assert hasattr(opts, key), f"{kind}Options has no field {key}"
        setattr(opts, key, value)
    return opts
