"""report.json (stable keys for scripts) and report.md (for people) of a build."""
from tfuav.fileio import atomic_write_json, atomic_write_text

STABLE_KEYS = ("model", "target", "params_trainable", "macs", "int8_size_bytes", "ops",
               "metrics", "validation", "timings")


def write_report(out_dir, report):
    missing = [k for k in STABLE_KEYS if k not in report]
    if missing:
        raise ValueError(f"report lacks keys {missing}")
    atomic_write_json(out_dir / "report.json", report)
    atomic_write_text(out_dir / "report.md", render_markdown(report))


def _fmt(value, digits=4):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def render_markdown(r):
    lines = [f"# tfuav build: {r['model']} for {r['target']}", ""]
    lines += ["## Model", "", "| | |", "|---|---|"]
    for key, label in (("params_trainable", "trainable parameters"), ("params_total", "total parameters"),
                       ("macs", "MACs per inference (deployed graph)"),
                       ("thop_flops", "FLOPs, paper convention (thop, all convolutions counted)"),
                       ("float_size_bytes", "float32 weights (bytes)"),
                       ("int8_size_bytes", "int8 .tflite size (bytes)"), ("sparsity", "weight sparsity")):
        if key in r:
            lines.append(f"| {label} | {_fmt(r[key])} |")
    lines += ["", "## Operators of the int8 graph", "", "| op | count |", "|---|---|"]
    for op, count in sorted(r.get("op_histogram", {}).items()):
        lines.append(f"| {op} | {count} |")
    lines += (render_detection_metrics(r["metrics"]) if r.get("task") == "detection"
              else render_classification_metrics(r["metrics"]))
    if r.get("channel_pruning"):
        lines += render_channel_pruning(r["channel_pruning"])
    v = r["validation"]
    lines += ["", "## Cross-runtime validation", "",
              f"Runtimes: {' vs '.join(v.get('runtimes', []))}; "
              f"largest difference {v.get('max_abs_diff')} LSB on "
              f"{v.get('num_differing', 0)} of {v.get('num_outputs', 0)} outputs; "
              f"**{'passed' if v.get('passed') else 'FAILED'}**."]
    for a in v.get("allowances") or []:
        lines.append(f"- allowance for {a['op']} (at most {a['bound_lsb']} LSB): {a['reason']}")
    if v.get("first_divergence"):
        lines.append(f"- first divergence: {v['first_divergence']}")
    if r.get("firmware"):
        lines += render_firmware(r["firmware"])
    if r.get("edgetpu"):
        from tfuav.export.coral import edgetpu_report_markdown
        lines += ["", edgetpu_report_markdown(r["edgetpu"]).rstrip()]
    lines += ["", "## Timings (seconds)", "", "| stage | seconds |", "|---|---|"]
    for stage, seconds in r["timings"].items():
        lines.append(f"| {stage} | {seconds:.1f} |")
    return "\n".join(lines) + "\n"


def render_classification_metrics(metrics):
    lines = ["", "## Metrics on the test split", "",
             "| model | accuracy | weighted F1 |", "|---|---|---|"]
    for kind in ("float", "int8"):
        m = metrics.get(kind) or {}
        lines.append(f"| {kind} | {_fmt(m.get('accuracy'))} | {_fmt(m.get('weighted_f1'))} |")
    per_class = (metrics.get("int8") or {}).get("per_class") or {}
    if per_class:
        lines += ["", "Per class (int8):", "", "| class | precision | recall | F1 | AUC |",
                  "|---|---|---|---|---|"]
        for name, m in per_class.items():
            lines.append(f"| {name} | {_fmt(m.get('precision'))} | {_fmt(m.get('recall'))} | "
                         f"{_fmt(m.get('f1'))} | {_fmt(m.get('auc'))} |")
    return lines


DETECTION_COLUMNS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR100")


def render_detection_metrics(metrics):
    lines = ["", "## COCO metrics on the test split (pycocotools)", "",
             "| model | " + " | ".join(DETECTION_COLUMNS) + " |",
             "|---" * (len(DETECTION_COLUMNS) + 1) + "|"]
    for kind in ("float", "int8"):
        m = metrics.get(kind) or {}
        lines.append(f"| {kind} | " + " | ".join(_fmt(m.get(c), 3) for c in DETECTION_COLUMNS)
                     + " |")
    per_class = (metrics.get("int8") or {}).get("per_class") or []
    if per_class:
        lines += ["", "Per class (int8):", "", "| class | AP | AP50 |", "|---|---|---|"]
        for row in per_class:
            lines.append(f"| {row['name']} | {_fmt(row.get('AP'), 3)} | "
                         f"{_fmt(row.get('AP50'), 3)} |")
    plot = (metrics.get("int8") or {}).get("pr_plot")
    if plot:
        lines += ["", f"![precision-recall at IoU 0.5 (int8)]({plot})"]
    return lines


def render_channel_pruning(p):
    lines = ["", "## Channel pruning", "",
             f"MACs {p['macs_before']:,} -> {p['macs_after']:,} ({p['macs_ratio']:.1%}), "
             f"parameters {p['params_before']:,} -> {p['params_after']:,}; budget "
             f"{'met' if p['budget_met'] else '**not met**'}; connections removed: "
             f"{', '.join(p['connections_removed']) or 'none'}.", "",
             "| layer | op | channels in | channels out | MACs before | MACs after |",
             "|---|---|---|---|---|---|"]
    for row in p["table"]:
        lines.append(f"| {row['layer']} | {row['op']} | "
                     f"{_fmt(row['channels_in_before'])} -> {_fmt(row['channels_in_after'])} | "
                     f"{_fmt(row['channels_out_before'])} -> {_fmt(row['channels_out_after'])} | "
                     f"{_fmt(row['macs_before'])} | {_fmt(row['macs_after'])} |")
    return lines


def render_firmware(fw):
    arena, fit = fw["arena"], fw["fit"]
    verdict = "fits" if fit["fits"] else "**does NOT fit** (packaged with --force)"
    return ["", f"## Firmware ({fw['target']}, {fw['chip']}, TFLM {fw['kernels']} kernels)", "",
            f"Folder `{fw['folder']}`; the model {verdict}.", "",
            "| | bytes | budget |", "|---|---|---|",
            f"| flash: model + runtime code | {fit['model_bytes']:,} + {fit['code_bytes']:,} "
            f"= {fit['flash_bytes']:,} | {fit['flash_budget']:,} |",
            f"| RAM: arena + I/O buffers + stack | {fit['arena_bytes']:,} + {fit['io_bytes']:,} "
            f"+ {fit['stack_bytes']:,} = {fit['ram_bytes']:,} | {fit['ram_budget']:,} |",
            "", f"Arena {arena['arena_bytes']:,} bytes = {arena['recorded_bytes']:,} recorded by "
            f"TFLM on the host + {arena['margin_bytes']:,} margin + "
            f"{arena['cmsis_nn_scratch_bytes']:,} largest CMSIS-NN scratch; proven by running "
            f"the {fw['golden']['count']} golden inputs with exactly this arena.",
            f"Ops registered: {', '.join(fw['ops'])}."]
