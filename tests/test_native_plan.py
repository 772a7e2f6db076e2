"""Native engine memory plan, checked independently of the planner: liveness is recomputed
here from the ops' reads and writes, and no two tensors that are live at the same op may
share scratch bytes unless the kernel declared that sharing (a view, an element-wise op
overwriting an input that dies there, a streaming convolution writing over the part of its
dying input it has read)."""
import tfuav  # noqa: F401  (first: selects Keras 2)

import numpy as np
import pytest
from test_native_models import keras_op_zoo
from test_native_support import VWW, ModelBuilder, options

from tfuav.export.native import compile_model


def _groups(compiled):
    """Tensors allowed to share bytes, as a union-find over declared views and legal in-place
    pairs; also returns the in-place pairs used."""
    parent = {}

    def find(t):
        while parent.get(t, t) != t:
            t = parent[t]
        return t

    def union(a, b):
        parent[find(a)] = find(b)

    last_read = {}
    for pos, s in enumerate(compiled.steps):
        for t in s.reads:
            last_read[t] = pos
    for s in compiled.steps:
        if s.alias_of is not None:
            union(s.writes[0], s.alias_of)
    return find, union, last_read


def check_plan(compiled):
    g, steps, plan = compiled.graph, compiled.steps, compiled.plan
    find, union, last_read = _groups(compiled)
    regions = {b.key: b.region for b in plan.buffers}
    n = len(steps)
    first, last = {}, {}
    for pos, s in enumerate(steps):
        for t in s.writes:
            first.setdefault(t, pos)
            last[t] = max(last.get(t, pos), pos)
        for t in s.reads:
            if not g.tensors[t].is_const:
                first.setdefault(t, pos)
                last[t] = max(last.get(t, pos), pos)
    for t in g.inputs:
        first[t] = -1
    for t in g.outputs:
        last[t] = n
    # views live as long as what they view, both ways
    changed = True
    while changed:
        changed = False
        for s in steps:
            if s.alias_of is not None:
                a, b = s.writes[0], s.alias_of
                lo, hi = min(first[a], first[b]), max(last[a], last[b])
                if (first[a], last[a], first[b], last[b]) != (lo, hi, lo, hi):
                    first[a] = first[b] = lo
                    last[a] = last[b] = hi
                    changed = True
    ranges = {}
    for t, key in plan.tensor_buffer.items():
        start = plan.tensor_offset[t]
        ranges[t] = (regions[key], start, start + g.tensors[t].nbytes)
        if regions[key] == "scratch":
            assert start % 4 == 0 and start + g.tensors[t].nbytes <= plan.peak_bytes
    # declared sharing must be legal: an element-wise op overwrites an input of its size
    # that is not read after it; a streaming conv's output starts `base` bytes before an
    # input that is not read after it
    allowed = set()
    for pos, s in enumerate(steps):
        out = s.writes[0] if s.writes else None
        if out is None or ranges.get(out, ("",))[0] != "scratch":
            continue
        for t in s.inplace:
            if ranges.get(t) == ranges.get(out) and t != out:
                assert last_read[t] == pos, f"op {s.op.index} overwrites a tensor read later"
                assert g.tensors[t].nbytes == g.tensors[out].nbytes
                allowed.add(frozenset((find(t), find(out))))
        if s.overlap is not None:
            t, base = s.overlap
            region, start, _ = ranges[t]
            if region == "scratch" and start == ranges[out][1] + base:
                assert last_read[t] == pos, f"op {s.op.index} writes over a tensor read later"
                allowed.add(frozenset((find(t), find(out))))
    live_checked = 0
    for pos, s in enumerate(steps):
        live = [t for t in ranges if first.get(t, n + 1) <= pos <= last.get(t, -2)]
        spans = [(ranges[t], t) for t in live]
        if plan.work_offset.get(pos) is not None:
            spans.append((("scratch", plan.work_offset[pos],
                           plan.work_offset[pos] + s.work_bytes), ("work", pos)))
        for i, ((ra, a0, a1), ta) in enumerate(spans):
            for (rb, b0, b1), tb in spans[i + 1:]:
                if ra != rb or a1 <= a0 or b1 <= b0 or a1 <= b0 or b1 <= a0:
                    continue
                assert not isinstance(ta, tuple) and not isinstance(tb, tuple) and (
                    find(ta) == find(tb) or frozenset((find(ta), find(tb))) in allowed), (
                    f"at op {s.op.index} ({s.op.name}) tensors {ta} and {tb} are both live and "
                    "share bytes")
                live_checked += 1
        # the scratch this op touches at once -- its inputs, outputs and temporary space,
        # less what it declared it may share -- fits the plan
        spans_now = sorted((ranges[t][1], ranges[t][2]) for t in set(s.reads + s.writes)
                           if t in ranges and ranges[t][0] == "scratch")
        if plan.work_offset.get(pos) is not None:
            spans_now.append((plan.work_offset[pos], plan.work_offset[pos] + s.work_bytes))
        covered, end = 0, None
        for a, b in sorted(spans_now):
            if end is None or a >= end:
                covered += b - a
                end = b
            elif b > end:
                covered += b - end
                end = b
        assert covered <= plan.peak_bytes
    return plan


def test_vww_plan(tmp_path):
    compiled = compile_model(VWW.read_bytes(), "vww")
    plan = check_plan(compiled)
    g = compiled.graph
    # the largest op working set of MobileNet VWW is a 48x48x8 input and its 48x48x16 output;
    # the pointwise conv writes over the part of its input it has read, so the plan needs
    # its output plus a little, not both
    biggest = max(sum(g.tensors[t].nbytes for t in s.reads + s.writes
                      if t not in g.inputs and t not in g.outputs) for s in compiled.steps)
    assert biggest == 48 * 48 * (8 + 16)
    assert 48 * 48 * 16 <= plan.peak_bytes < biggest
    summary = plan.to_dict(g)
    assert summary["scratch_bytes"] == plan.peak_bytes
    assert {r["tensor"] for r in summary["tensors"]} >= set(g.inputs + g.outputs)


def test_keras_ops_plan():
    model, _ = keras_op_zoo()
    check_plan(compile_model(model, "ops"))


def test_in_place_chain_is_used_and_legal():
    """ADD -> LOGISTIC -> MUL on one shape: the element-wise ops reuse dying inputs, so the
    plan needs less than one buffer per tensor, and a tensor read later is never overwritten."""
    shape = (1, 8, 8, 16)
    q = {"scale": 0.05, "zero_point": 3}
    b = ModelBuilder()
    x = b.tensor(shape, **q)
    z = b.tensor(shape, **q)
    s1 = b.tensor(shape, **q)
    b.op("ADD", [x, z], [s1], options("Add"))
    s2 = b.tensor(shape, scale=1.0 / 256, zero_point=-128)
    b.op("LOGISTIC", [s1], [s2])
    s3 = b.tensor(shape, **q)
    b.op("MUL", [s2, s1], [s3], options("Mul"))   # s1 is still needed here: not in place
    s4 = b.tensor(shape, **q)
    b.op("ADD", [s3, x], [s4], options("Add"))
    s5 = b.tensor(shape, scale=1.0 / 256, zero_point=-128)
    b.op("LOGISTIC", [s4], [s5])
    compiled = compile_model(b.build([x, z], [s5]), "chain")
    plan = check_plan(compiled)
    size = int(np.prod(shape))
    assert plan.peak_bytes <= 3 * size  # s1, s2, s3 live together at the MUL; s4 reuses s3
    offs = plan.tensor_offset
    assert offs[s4] == offs[s3]       # ADD wrote over its dying input
    assert offs[s2] != offs[s1]       # s1 is read again by the MUL


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plan_of_random_branching_graphs(seed):
    """Random DAGs of element-wise and concatenation ops with long-lived branches."""
    rng = np.random.default_rng(seed)
    q = {"scale": 0.05, "zero_point": 0}
    b = ModelBuilder()
    x = b.tensor((1, 4, 4, 8), **q)
    pool = [x]
    for i in range(25):
        a, c = (pool[int(k)] for k in rng.integers(0, len(pool), 2))
        kind = rng.integers(0, 3)
        if kind == 0:
            y = b.tensor((1, 4, 4, 8), **q)
            b.op("ADD", [a, c], [y], options("Add"))
        elif kind == 1:
            y = b.tensor((1, 4, 4, 8), **q)
            b.op("RELU", [a], [y])
        else:
            y = b.tensor((1, 4, 4, 8), **q)
            wide = b.tensor((1, 4, 4, 16), **q)
            b.op("CONCATENATION", [a, c], [wide], options("Concatenation", axis=3))
            b.op("MAX_POOL_2D", [wide], [b.tensor((1, 2, 2, 16), **q)],
                 options("Pool2D", padding=1, strideW=2, strideH=2, filterWidth=2,
                         filterHeight=2))
            b.op("SPLIT", [b.const(np.array(3, np.int32)), wide], [y, b.tensor((1, 4, 4, 8), **q)],
                 options("Split", numSplits=2))
        pool.append(y)
    check_plan(compile_model(b.build([x], [pool[-1], pool[len(pool) // 2]]), "random"))


def _conv_chain():
    """RELU, then pointwise (8 -> 16), depthwise 3x3 (stride 1, then 2 with dilation 1) and
    pointwise (16 -> 6) convolutions, each reading the previous op's output."""
    from test_native_kernels import act_scale, out_quant
    rng = np.random.default_rng(5)
    b = ModelBuilder()
    s, z = act_scale(rng)
    x = b.tensor((1, 12, 10, 8), scale=s, zero_point=z)
    r = b.tensor((1, 12, 10, 8), scale=s, zero_point=z)
    b.op("RELU", [x], [r])
    prev, shape = r, (1, 12, 10, 8)
    for kind, oc, stride in (("pw", 16, 1), ("dw", 16, 1), ("dw", 16, 2), ("pw", 6, 1)):
        c = shape[3]
        if kind == "pw":
            wshape, axis, depth = (oc, 1, 1, c), 0, c
        else:
            wshape, axis, depth = (1, 3, 3, oc), 3, 9
        w_s = rng.uniform(0.002, 0.02, oc)
        wt = b.tensor(wshape, scale=w_s, zero_point=0, data=rng.integers(-127, 128, wshape),
                      axis=axis)
        bt = b.tensor((oc,), "int32", scale=s * w_s, data=rng.integers(-2000, 2000, oc))
        o_s, o_z = out_quant(rng, s, w_s, depth)
        h, w = -(-shape[1] // stride), -(-shape[2] // stride)
        y = b.tensor((1, h, w, oc), scale=o_s, zero_point=o_z)
        if kind == "pw":
            b.op("CONV_2D", [prev, wt, bt], [y], options("Conv2D", padding=0, strideW=1,
                                                         strideH=1))
        else:
            b.op("DEPTHWISE_CONV_2D", [prev, wt, bt], [y],
                 options("DepthwiseConv2D", padding=0, strideW=stride, strideH=stride,
                         depthMultiplier=1))
        prev, shape, s, z = y, (1, h, w, oc), o_s, o_z
    return b.build([x], [prev]), rng


def test_streaming_convolutions_write_over_their_inputs(tmp_path):
    """The convolutions of a chain write over the part of their dying input they have read:
    the plan uses that (input placed `base` bytes after the output's start, peak below the
    largest input + output) and the outputs stay byte-identical to the reference kernels."""
    from test_native_kernels import check_model
    from test_native_support import build_kernel_archive
    model, rng = _conv_chain()
    compiled = compile_model(model, "chain")
    plan = check_plan(compiled)
    used = [s for s in compiled.steps if s.overlap and
            plan.tensor_offset[s.overlap[0]] == plan.tensor_offset[s.writes[0]] + s.overlap[1]]
    assert len(used) >= 2
    g = compiled.graph
    biggest = max(sum(g.tensors[t].nbytes for t in s.reads + s.writes
                      if t not in g.inputs + g.outputs) for s in compiled.steps)
    assert plan.peak_bytes < biggest
    check_model(model, build_kernel_archive(tmp_path), tmp_path, [(1, 12, 10, 8)], rng, runs=4)
