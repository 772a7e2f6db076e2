"""Static memory plan: every activation tensor and every op's temporary space gets a fixed
offset in one scratch buffer. Lifetimes come from the op order; buffers whose lifetimes
overlap never share bytes. Views (RESHAPE) share their source's bytes, an element-wise op
writes over an input that dies at that op when sizes match (in place), and a stride-1
pointwise conv writes its output over the part of its dying input it has already read
(overlap). Placement is greedy: largest buffer first, lowest offset that fits, over several
orderings, keeping the smallest peak."""
from dataclasses import dataclass, field

from tfuav.export.native.program import NativeExportError

ALIGN = 8


def _aligned(n):
    return (n + ALIGN - 1) // ALIGN * ALIGN


@dataclass
class Buffer:
    key: str
    size: int
    first: int
    last: int
    tensors: list = field(default_factory=list)
    region: str = "scratch"   # scratch | input | output
    offset: int = 0

    def overlaps_in_time(self, other):
        return self.first <= other.last and other.first <= self.last


@dataclass
class Plan:
    buffers: list
    tensor_buffer: dict     # tensor index -> Buffer key
    tensor_offset: dict     # tensor index -> byte offset within its region
    work_offset: dict       # step position -> byte offset of its temporary space
    peak_bytes: int

    def to_dict(self, graph):
        rows = []
        by_key = {b.key: b for b in self.buffers}
        for t, key in sorted(self.tensor_buffer.items()):
            b = by_key[key]
            rows.append({"tensor": t, "name": graph.tensors[t].name, "region": b.region,
                         "offset": self.tensor_offset[t], "bytes": graph.tensors[t].nbytes,
                         "buffer": key, "first_op": b.first, "last_op": b.last})
        work = [{"step": s, "offset": off, "bytes": next(b.size for b in self.buffers
                                                        if b.key == f"work{s}")}
                for s, off in sorted(self.work_offset.items())]
        return {"scratch_bytes": self.peak_bytes, "alignment": ALIGN, "tensors": rows,
                "work": work}


def plan_memory(graph, steps):
    """The Plan for these steps (step position = execution order)."""
    parent = {}     # tensor -> (tensor it is a view of, byte offset)

    def root(t):
        off = 0
        while t in parent:
            t, o = parent[t]
            off += o
        return t, off

    for s in steps:
        if s.alias_of is not None:
            parent[s.writes[0]] = (s.alias_of, 0)

    first, last = {}, {}
    for pos, s in enumerate(steps):
        for t in s.writes:
            r = root(t)[0]
            first.setdefault(r, pos)
            last[r] = max(last.get(r, pos), pos)
        for t in s.reads:
            if graph.tensors[t].is_const:
                continue
            r = root(t)[0]
            first.setdefault(r, pos)
            last[r] = max(last.get(r, pos), pos)

    inputs = {root(t)[0] for t in graph.inputs}
    outputs = {root(t)[0] for t in graph.outputs}
    if inputs & outputs:
        raise NativeExportError("native engine: a model output is the model input itself")
    if len(outputs) != len(graph.outputs) or len(inputs) != len(graph.inputs):
        raise NativeExportError("native engine: two model inputs or outputs share their bytes")

    # in place: an element-wise op's output takes over an input that dies there
    for pos, s in enumerate(steps):
        if not s.inplace or s.alias_of is not None or len(s.writes) != 1:
            continue
        out = s.writes[0]
        if out in parent or root(out)[0] in outputs:
            continue
        for t in s.inplace:
            r, off = root(t)
            if (r in inputs or r in outputs or graph.tensors[t].is_const or last.get(r) != pos
                    or graph.tensors[t].nbytes != graph.tensors[out].nbytes
                    or any(root(x)[0] == r for x in s.reads if x != t)):
                continue
            parent[out] = (t, 0)
            last[r] = max(last[r], last.pop(out, pos))
            first.pop(out, None)
            break

    members = {}
    used = {t for s in steps for t in s.reads + s.writes} | set(graph.inputs) | set(graph.outputs)
    for t in sorted(used):
        if not graph.tensors[t].is_const:
            members.setdefault(root(t)[0], []).append(t)

    buffers = []
    end = len(steps)
    for r, ts in sorted(members.items()):
        region = "input" if r in inputs else "output" if r in outputs else "scratch"
        size = max(graph.tensors[t].nbytes + root(t)[1] for t in ts)
        lo = -1 if region == "input" else first.get(r, 0)
        hi = end if region == "output" else last.get(r, lo)
        buffers.append(Buffer(key=f"t{r}", size=size, first=lo, last=hi, tensors=ts,
                              region=region))
    for pos, s in enumerate(steps):
        if s.work_bytes:
            buffers.append(Buffer(key=f"work{pos}", size=s.work_bytes, first=pos, last=pos))

    _place_io(graph, buffers, root)
    scratch = [b for b in buffers if b.region == "scratch"]
    # overlap: a kernel that reads each part of its input before writing over it (a stride-1
    # pointwise conv going through its rows in order, a depthwise conv through its pixels)
    # may put the input, which dies there, `base` bytes after the start of its output
    keys = {b.key for b in scratch}
    edges = []
    for pos, s in enumerate(steps):
        if s.overlap is None or len(s.writes) != 1:
            continue
        t, base = s.overlap
        r, off = root(t)
        out, out_off = root(s.writes[0])
        if (off or out_off or r == out or f"t{r}" not in keys or f"t{out}" not in keys
                or last.get(r) != pos or first.get(out) != pos):
            continue
        edges.append((pos, f"t{r}", f"t{out}", base))
    peak = _place_best(scratch, edges)
    tensor_buffer, tensor_offset = {}, {}
    for b in buffers:
        for t in b.tensors:
            tensor_buffer[t] = b.key
            tensor_offset[t] = b.offset + root(t)[1]
    work = {int(b.key[4:]): b.offset for b in buffers if b.key.startswith("work")}
    return Plan(buffers=buffers, tensor_buffer=tensor_buffer, tensor_offset=tensor_offset,
                work_offset=work, peak_bytes=peak if scratch else 0)


def _place_io(graph, buffers, root):
    """Model inputs live in the caller's input buffer, outputs in its output buffer, one after
    the other in the model's order."""
    by_key = {b.key: b for b in buffers}
    for indices in (graph.inputs, graph.outputs):
        offset = 0
        for t in indices:
            r, _ = root(t)
            by_key[f"t{r}"].offset = offset
            offset += graph.tensors[t].nbytes


def _groups(buffers, edges):
    """Buffers tied together by overlap edges (input at out + base), as lists of
    (buffer, relative offset) with the smallest relative offset 0."""
    by_key = {b.key: b for b in buffers}
    link = {e[1]: (e[2], e[3]) for e in edges}          # input buffer -> (output, base)
    heads = {b.key for b in buffers} - set(link)
    result = []
    for head in sorted(heads):
        chain, rel, key = [(by_key[head], 0)], 0, head
        back = {v[0]: (k, v[1]) for k, v in link.items()}
        while key in back:
            key, base = back[key]
            rel += base
            chain.append((by_key[key], rel))
        low = min(r for _, r in chain)
        result.append([(b, r - low) for b, r in chain])
    return result


def _place(groups, order):
    """First fit, group by group: the lowest offset at which no member meets a buffer placed
    before it that is live at the same time."""
    placed = []
    for group in order(groups):
        candidates = {0}
        for b, rel in group:
            candidates.update(p.offset + _aligned(p.size) - rel for p in placed)
        for base in sorted(c for c in candidates if c >= 0):
            if all(not (p.overlaps_in_time(b) and base + rel < p.offset + _aligned(p.size)
                        and p.offset < base + rel + _aligned(b.size))
                   for b, rel in group for p in placed):
                break
        for b, rel in group:
            b.offset = base + rel
            placed.append(b)
    return max((b.offset + _aligned(b.size) for b in placed), default=0)


def _extent(group):
    return max(rel + b.size for b, rel in group)


ORDERS = (
    lambda gs: sorted(gs, key=lambda g: (-_extent(g), min(b.first for b, _ in g))),
    lambda gs: sorted(gs, key=lambda g: (-(max(b.last for b, _ in g) - min(b.first for b, _ in g)),
                                        -_extent(g))),
    lambda gs: sorted(gs, key=lambda g: (-sum(b.size * (b.last - b.first + 1) for b, _ in g),)),
    lambda gs: sorted(gs, key=lambda g: (min(b.first for b, _ in g), -_extent(g))),
)


def _chains(edges):
    """Overlap edges as chains (an edge's output buffer is the next edge's input)."""
    nxt = {e[1]: e for e in edges}
    targets = {e[2] for e in edges}
    chains = []
    for e in sorted(edges):
        if e[1] in targets:
            continue
        chain = [e]
        while chain[-1][2] in nxt:
            chain.append(nxt[chain[-1][2]])
        chains.append(chain)
    return chains


def _edge_sets(edges):
    """Candidate subsets of the overlap edges: none, all, and every chain cut into runs of
    at most `run` edges at each phase (long chains stack their offsets up and spread one
    group over more memory than the tensors need at any one time)."""
    chains = _chains(edges)
    sets = [[], list(edges)]
    for run in (1, 2, 3, 4):
        for phase in range(run + 1):
            sets.append([e for chain in chains for i, e in enumerate(chain)
                         if (i + phase) % (run + 1) != run])
    return sets


def _place_best(buffers, edges=()):
    best, best_offsets = None, None
    for chosen in _edge_sets(list(edges)):
        groups = _groups(buffers, chosen)
        for order in ORDERS:
            peak = _place(groups, order)
            if best is None or peak < best:
                best, best_offsets = peak, {b.key: b.offset for b in buffers}
    for b in buffers:
        b.offset = best_offsets[b.key]
    return best
