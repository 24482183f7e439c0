"""Reporting for `bench.py`: the speed targets, the stderr table and the markdown table of docs/SPEED.md."""

from __future__ import annotations

import torch
from bench_common import ROOT  # noqa: F401  (first: puts the checkout on sys.path)
from bench_profile import profile_table

from mfjle_lib.perf.path_check import FLIP_LIMIT, MAX_CHANGE_LIMIT
from tools.machine_load import busy_warning

PAPER_MS_PER_IMAGE = 10.52  # MF-JLE on a GTX 1060, Section IV.C


def add_targets(r: dict, device: torch.device) -> None:
    """The issue's targets as ratios and flags (met = True/False)."""
    t = {}
    t["infer_ms_target"] = PAPER_MS_PER_IMAGE
    t["infer_met"] = r["mfjle_infer_ms_per_img"] <= PAPER_MS_PER_IMAGE
    r["train_step_ratio"] = r["mfjle_train_step_s"] / r["resnet18_train_step_s"]
    r["train_step_ratio_spread"] = ratio_spread(r)
    t["train_step_ratio_limit"] = 1.1 * r["flop_ratio"]
    t["train_met"] = r["train_step_ratio"] <= t["train_step_ratio_limit"]
    best_inf = min(r["mfjle_naive_infer_ms_per_img"], r["mfjle_fused_infer_ms_per_img"])
    best_train = min(r["mfjle_naive_train_step_s"], r["mfjle_fused_train_step_s"])
    r["picked_vs_best_infer"] = r["mfjle_auto_infer_ms_per_img"] / best_inf
    r["picked_vs_best_train"] = r["mfjle_train_step_s"] / best_train
    t["picked_met"] = r["picked_vs_best_infer"] <= 1.05 and r["picked_vs_best_train"] <= 1.05
    if device.type == "cuda":
        t["fused_le_naive_met"] = (
            r["mfjle_fused_infer_ms_per_img"] <= r["mfjle_naive_infer_ms_per_img"]
            and r["mfjle_fused_train_step_s"] <= r["mfjle_naive_train_step_s"]
        )
    train_ips = r["batch_size"] / r["mfjle_train_step_s"]
    r["data_vs_train_throughput"] = r["data_images_per_s"] / train_ips
    t["data_met"] = r["data_vs_train_throughput"] >= 5
    if "projected_218_epochs_min" in r:
        t["epochs_218_min_target_h100"] = 5.0
        t["epochs_met"] = r["projected_218_epochs_min"] <= 5.0
    r["targets"] = t


def ratio_spread(r: dict) -> str:
    """min / median / max of the per-round training step ratios."""
    v = sorted(r.get("train_step_ratio_per_round") or [])
    return f"{v[0]:.3f} / {v[len(v) // 2]:.3f} / {v[-1]:.3f}" if v else "-"


def table(r: dict) -> str:
    """The report of one device as a plain-text table (printed on stderr)."""
    dev = r["gpu"] or r["cpu"]
    lines = [
        f"device {r['device']}: {dev}; torch {r['torch']}, {r['threads']} threads; batch {r['batch_size']}, "
        f"R {r['source_size']}, S_g {r['global_size']}, S_l {r['local_size']}, c {r['crop_fraction']}"
    ]
    if r.get("busy") is not False:
        lines.append("  " + (busy_warning(r.get("load_average_start"), "this run") or ""))
    row = "  {:<44s} {:>12s}"
    ratios = r.get("ratio_to_torchvision_resnet18", {})

    def timed(k: str) -> str:
        """ms/image, and the multiple of the torchvision reference timed in the same rounds."""
        ratio = ratios.get(k.removesuffix("_infer_ms_per_img"))
        return f"{r[k]:.2f}" + (f"  ({ratio:.2f} x ref)" if ratio is not None else "")

    lines.append(row.format("inference (ms/image)", ""))
    lines.append(
        row.format(
            "    reference: torchvision ResNet-18, channels_last", f"{r['torchvision_resnet18_infer_ms_per_img']:.2f}"
        )
    )
    for k, label in [
        ("resnet18_infer_ms_per_img", "ResNet-18"),
        ("mfjle_naive_infer_ms_per_img", "MF-JLE naive (loop)"),
        ("mfjle_fused_infer_ms_per_img", "MF-JLE fused (grouped conv)"),
        ("mfjle_auto_infer_ms_per_img", f"MF-JLE picked ({r['local_impl_picked']})"),
    ]:
        lines.append(row.format("    " + label, timed(k)))
    for k in sorted(r):
        if k.endswith("_infer_ms_per_img") and "_deploy_" in k:
            lines.append(row.format("    " + k.replace("_infer_ms_per_img", ""), timed(k)))
    lines.append(row.format(f"    MF-JLE default path ({r['mfjle_infer_path']})", timed("mfjle_infer_ms_per_img")))
    lines.append(row.format(f"training step (s, batch {r['batch_size']})", ""))
    for k, label in [
        ("resnet18_train_step_s", "ResNet-18"),
        ("mfjle_naive_train_step_s", "MF-JLE naive"),
        ("mfjle_fused_train_step_s", "MF-JLE fused"),
        ("mfjle_train_step_s", "MF-JLE picked"),
    ]:
        lines.append(row.format("    " + label, f"{r[k]:.3f}"))
    lines.append(
        row.format("FLOP ratio MF-JLE/ResNet-18 (fwd / train)", f"{r['flop_ratio']:.3f} / {r['train_flop_ratio']:.3f}")
    )
    lines.append(
        row.format(
            "train step ratio (limit 1.1 x flop ratio)",
            f"{r['train_step_ratio']:.3f} / {r['targets']['train_step_ratio_limit']:.3f}",
        )
    )
    lines.append(row.format("    per round: min / median / max", r["train_step_ratio_spread"]))
    if r.get("page_faults_per_train_step"):
        lines.append(
            row.format(
                "    page faults per step (median)",
                " / ".join(str(v) for v in r["page_faults_per_train_step"].values()),
            )
        )
    lines.append(
        row.format(
            "data path images/s (aug / no aug)",
            f"{r['data_images_per_s']:.0f} / {r['data_images_per_s_no_augment']:.0f}",
        )
    )
    lines.append(row.format("data / training throughput (target >= 5)", f"{r['data_vs_train_throughput']:.1f}"))
    lines.append(row.format(f"peak memory MB ({r['peak_memory_kind']})", f"{r['peak_memory_mb']:.0f}"))
    if "epoch_time_s" in r:
        lines.append(row.format("epoch 4,908 img @224, batch 128 (s)", f"{r['epoch_time_s']:.1f}"))
        lines.append(row.format("projected 218 epochs (min)", f"{r['projected_218_epochs_min']:.1f}"))
    chk = r.get("deploy_check")
    if chk:
        for m, c in (chk.get("methods") or {chk.get("method"): chk}).items():
            n = c.get("decisions", c.get("decisions_total"))  # older files: decisions_total, max_abs_prob_diff
            change = c.get("max_abs_change", c.get("max_abs_prob_diff"))
            lines.append(
                f"  deploy check {m}: {c.get('decisions_flipped')}/{n} decisions flipped "
                f"(limit {100 * FLIP_LIMIT:g} %), max |dp| {change:.3f} (limit {MAX_CHANGE_LIMIT:g}); "
                f"micro-F1 change {c.get('micro_f1_change'):+.4f} -> {'passed' if c.get('passed') else 'FAILED'}"
                + ("" if chk.get("same_geometry") else " [other geometry: not used]")
            )
    lines.append("  targets: " + ", ".join(f"{k}={v}" for k, v in r["targets"].items() if k.endswith("_met")))
    lines.append(
        f"  load average (1, 5, 15 min) at start / end: {_load(r['load_average_start'])} / "
        f"{_load(r['load_average_end'])}" + {True: "  BUSY", None: "  (unknown)"}.get(r.get("busy"), "")
    )
    return "\n".join(lines)


def _load(values: list[float] | None) -> str:
    """A load-average triple as '0.12, 0.30, 0.41' ('unknown' where the OS has none)."""
    return ", ".join(f"{v:.2f}" for v in values) if values else "unknown"


def markdown(reports: dict[str, dict], command: str) -> str:
    """The docs/SPEED.md table: one column per device, with the device named."""
    keys = [
        (
            "torchvision_resnet18_infer_ms_per_img",
            "reference: torchvision ResNet-18 (channels_last, S_g), ms/image",
            "{:.2f}",
        ),
        ("resnet18_infer_ms_per_img", "ResNet-18 inference, ms/image", "{:.2f}"),
        ("mfjle_naive_infer_ms_per_img", "MF-JLE naive (5 resnet18s in a loop), ms/image", "{:.2f}"),
        ("mfjle_fused_infer_ms_per_img", "MF-JLE fused (grouped conv), ms/image", "{:.2f}"),
        ("mfjle_deploy_fp32_infer_ms_per_img", "MF-JLE deploy fp32 (folded BN), ms/image", "{:.2f}"),
        ("mfjle_deploy_bf16_infer_ms_per_img", "MF-JLE deploy bf16, ms/image", "{:.2f}"),
        ("mfjle_deploy_mixed_infer_ms_per_img", "MF-JLE deploy mixed (bf16 global, int8 locals), ms/image", "{:.2f}"),
        ("mfjle_deploy_int8_infer_ms_per_img", "MF-JLE deploy int8, ms/image", "{:.2f}"),
        ("mfjle_infer_ms_per_img", "**MF-JLE default path**, ms/image (paper: 10.52 on a GTX 1060)", "**{:.2f}**"),
        ("mfjle_infer_path", "default path", "{}"),
        ("mfjle_ratio_to_reference", "MF-JLE default path / torchvision reference", "{:.2f}"),
        ("resnet18_train_step_s", "ResNet-18 training step, s", "{:.3f}"),
        ("mfjle_naive_train_step_s", "MF-JLE naive training step, s", "{:.3f}"),
        ("mfjle_fused_train_step_s", "MF-JLE fused training step, s", "{:.3f}"),
        ("local_impl_picked", "local implementation picked", "{}"),
        ("flop_ratio", "FLOP ratio MF-JLE / ResNet-18", "{:.3f}"),
        ("train_step_ratio", "training step ratio MF-JLE / ResNet-18", "{:.3f}"),
        ("train_step_ratio_spread", "same, per round: min / median / max", "{}"),
        ("data_images_per_s", "data path, images/s (with augmentation)", "{:.0f}"),
        ("data_vs_train_throughput", "data path / MF-JLE training throughput", "{:.1f}"),
        ("peak_memory_mb", "peak memory, MB", "{:.0f}"),
        ("epoch_time_s", "epoch, 4,908 images @224, batch 128, s", "{:.1f}"),
        ("projected_218_epochs_min", "projected 218 epochs, min", "{:.1f}"),
    ]
    reports = {
        d: {**r, "mfjle_ratio_to_reference": r.get("ratio_to_torchvision_resnet18", {}).get("mfjle")}
        for d, r in reports.items()
    }
    devs = list(reports)
    names = [f"{d}: {reports[d]['gpu'] or reports[d]['cpu']}" for d in devs]
    r0 = reports[devs[0]]
    rounds = (
        f"medians of {r0['repeats']} interleaved rounds after warm-up"
        if "resnet18_train_step_s" in r0
        else f"profile only: medians of {r0['train_profile']['steps']} interleaved profiled rounds after warm-up"
    )
    lines = [
        f"Batch {r0['batch_size']}, R = {r0['source_size']}, S_g = {r0['global_size']}, S_l = {r0['local_size']}, "
        f"c = {r0['crop_fraction']}; torch {r0['torch']}; {rounds}; "
        f"`{command}`",
        "",
        "| | " + " | ".join(names) + " |",
        "|---|" + "---|" * len(devs),
    ]
    for key, label, fmt in keys:
        if any(key in reports[d] and reports[d][key] is not None for d in devs):
            cells = [fmt.format(reports[d][key]) if reports[d].get(key) is not None else "–" for d in devs]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for d in devs:
        la = reports[d]
        lines.append("")
        targets = la.get("targets", {})  # none in a --profile-only run
        lines.append(
            f"{d}: targets "
            + (
                ", ".join(f"{k[:-4]} {'met' if v else 'MISSED'}" for k, v in targets.items() if k.endswith("_met"))
                or "-"
            )
            + (
                f"; load average (1, 5, 15 min) {_load(la['load_average_start'])} at start, "
                f"{_load(la['load_average_end'])} at end"
            )
            + {True: " (BUSY: not comparable).", None: " (load unknown)."}.get(la.get("busy"), ".")
        )
        if "train_profile" in la:
            lines += ["", profile_heading(la), "", profile_table(la["train_profile"], la.get("train_flop_ratio"))]
    return "\n".join(lines) + "\n"


def profile_heading(r: dict) -> str:
    """The line above a profile table: what was profiled, on which CPU, with how many threads."""
    m = r.get("machine", {})
    return (
        f"Training step by operator category (`torch.profiler`, self CPU time, {r['train_profile']['steps']} "
        f"profiled steps per model after one warm-up, the trainer's `train_step`, float32): {m.get('cpu', r['cpu'])}, "
        f"{', '.join(m.get('cpu_extensions', [])) or 'no listed vector extensions'} (kernels: "
        f"{m.get('cpu_capability', '?')}), {m.get('cpu_threads', r['threads'])} threads."
    )
