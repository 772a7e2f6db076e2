"""Graph rewrites that keep every output byte the same and save memory and time.

PAD into convolution: a PAD (or PADV2 padding with the zero point) of height and width whose
only reader is a CONV_2D or DEPTHWISE_CONV_2D becomes extra padding of that convolution. The
reference convolution skips positions outside its input, which is the same as reading the
input zero point there (its term w * (zp - zp) is 0), and the PAD writes exactly that value;
so the convolution reads the unpadded tensor and the padded copy is never made."""
import numpy as np

CONVOLUTIONS = ("CONV_2D", "DEPTHWISE_CONV_2D")


def _pad_amounts(graph, op):
    t = graph.tensors[op.inputs[1]] if len(op.inputs) > 1 else None
    if t is None or not t.is_const:
        return None
    pads = np.asarray(t.data).reshape(-1, 2)
    if pads.shape != (4, 2) or pads[0].any() or pads[3].any() or (pads < 0).any():
        return None
    return [int(v) for v in pads[1:3].reshape(-1)]  # top, bottom, left, right


def fuse_pads(graph):
    """Folds PADs into the convolution that reads them; returns the removed PAD ops."""
    removed = []
    for pad in list(graph.ops):
        if pad.name not in ("PAD", "PADV2"):
            continue
        src, dst = graph.tensors[pad.inputs[0]], graph.tensors[pad.outputs[0]]
        amounts = _pad_amounts(graph, pad)
        readers = graph.consumers(pad.outputs[0])
        if (amounts is None or len(readers) != 1 or readers[0].name not in CONVOLUTIONS
                or readers[0].inputs[0] != pad.outputs[0] or pad.outputs[0] in graph.outputs
                or src.dtype != "int8" or src.scale is None or dst.scale is None
                or not src.per_tensor or src.qparams() != dst.qparams()
                or len(src.shape) != 4):
            continue
        if pad.name == "PADV2" and len(pad.inputs) > 2 and pad.inputs[2] >= 0:
            value = graph.tensors[pad.inputs[2]]
            if not value.is_const or int(np.asarray(value.data).reshape(-1)[0]) != \
                    src.qparams()[1]:
                continue
        conv = readers[0]
        top, _, left, _ = amounts
        conv.inputs = [pad.inputs[0]] + conv.inputs[1:]
        conv.extra["pre_pad"] = {"top": top, "left": left, "height": dst.shape[1],
                                 "width": dst.shape[2]}
        graph.ops.remove(pad)
        removed.append(pad)
    return removed
