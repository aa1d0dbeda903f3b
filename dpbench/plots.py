"""Figures from result records (``dpbench plot``), PNG and SVG each, matplotlib's Agg backend:

- ``scores``: per task, max and avg-last-10 score bars (± std across seeds, the paper's values as markers
  where the cell is comparable: ``unlike_paper``)
  and the final success rate (95% Wilson CI over the pooled test episodes);
- ``curves_<env>-<obs>``: score against training step and against training wall-time, mean over seeds with
  the min-max band of the seeds;
- ``latency``: inference time per executed action (a chunk's latency / T_a) against the score;
- ``equal_time_<env>-<obs>``: every policy's best score so far against training CPU-minutes on one axis (CPU
  records only; dpbench.equal_time, whose table reads it at its budgets), the view for choosing a policy under a
  CPU budget.

Each configuration (policy, preset, dataset, config) is one colour everywhere, named like the table's rows.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from dpbench.equal_time import cpu_minutes, is_cpu
from dpbench.figure_text import (
    LABEL_NOTE,
    UNLIKE_NOTE,
    action_steps,
    config_labels,
    cpu_kinds_note,
    device_names,
    paper_caveat,
    paper_marker,
    score_label,
    timed_labels,
    unlike_paper,
)
from dpbench.results import Group, group_records

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_all(records: list[dict[str, Any]], figdir: Path) -> list[Path]:
    """Every figure for these records into ``figdir``; returns the files written."""
    groups = group_records(records)
    figdir = Path(figdir)
    figdir.mkdir(parents=True, exist_ok=True)
    written = plot_scores(groups, figdir / "scores")
    for task in sorted({g.task for g in groups}):
        written += plot_curves([g for g in groups if g.task == task], figdir / f"curves_{task.replace('/', '-')}")
    written += plot_latency(groups, figdir / "latency")
    for task in sorted({g.task for g in groups}):
        written += plot_equal_time(
            [g for g in groups if g.task == task], figdir / f"equal_time_{task.replace('/', '-')}"
        )
    return written


def _mpl() -> ModuleType:
    """matplotlib.pyplot on the Agg backend with dpbench's style (imported here: plotting is optional work)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update(
        {
            "font.size": 9,
            "axes.titlesize": 10,
            "axes.labelsize": 9,
            "legend.fontsize": 8,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.fonttype": "none",
        }
    )
    return plt


def _colors(labels: list[str]) -> dict[str, Any]:
    """A distinct colour per name: tab10, tab20 beyond 10 names, and beyond 20 turbo's hues in golden-ratio steps,
    so names next to each other in a sorted legend (one policy's variants) differ most."""
    plt = _mpl()
    names = sorted(set(labels))
    if len(names) <= 20:
        cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
        return {name: cmap(i) for i, name in enumerate(names)}
    cmap = plt.get_cmap("turbo")
    return {name: cmap(0.05 + 0.9 * (i * 0.618034 % 1.0)) for i, name in enumerate(names)}


def _save(fig: Figure, stem: Path) -> list[Path]:
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], dpi=160, bbox_inches="tight")
    # no date and fixed ids: an SVG changes in git only when the figure does
    with _mpl().rc_context({"svg.hashsalt": "dpbench"}):
        fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None})
    _mpl().close(fig)
    return paths


SCORE_COLUMNS = 3  # task panels per row of the scores figure


def plot_scores(groups: list[Group], stem: Path) -> list[Path]:
    """Score (max, avg-last-10) and success-rate bars per task, with the paper's scores as markers: one
    panel pair (scores over success) per task, ``SCORE_COLUMNS`` tasks to a row; bars are labelled within
    their task (only that task's variants need telling apart) and coloured by policy across tasks."""
    plt = _mpl()
    import textwrap

    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    tasks = sorted({g.task for g in groups})
    colors = _colors(sorted({g.policy for g in groups}))
    n_cols = min(len(tasks), SCORE_COLUMNS)
    n_rows = -(-len(tasks) // n_cols)
    n_max = max(sum(g.task == t for g in groups) for t in tasks)
    fig, axes = plt.subplots(
        2 * n_rows,
        n_cols,
        figsize=(max(3.6, 0.75 * n_max + 1.4) * n_cols, 5.6 * n_rows),
        squeeze=False,
        gridspec_kw={"height_ratios": [1.6, 1.0] * n_rows},
    )
    any_paper = unlike = False
    fallback = any(g.heldout is None for g in groups)  # some success bar is the last periodic evaluation's
    caveats: dict[str, str] = {}  # label -> how the paper's marker beside it was made
    for k, task in enumerate(tasks):
        top, bottom = axes[2 * (k // n_cols), k % n_cols], axes[2 * (k // n_cols) + 1, k % n_cols]
        labels = config_labels([g for g in groups if g.task == task])
        rows = sorted(labels, key=lambda g: labels[g])
        seeds = sorted({g.seeds for g in rows})
        for i, g in enumerate(rows):
            c = colors[g.policy]
            two = g.seeds > 1
            top.bar(i - 0.2, g.max, 0.38, color=c, yerr=g.max_std if two else None, capsize=3, ecolor="0.25")
            top.bar(
                i + 0.2,
                g.avg_last10,
                0.38,
                color=c,
                alpha=0.4,
                hatch="////",
                edgecolor=c,
                yerr=g.avg_last10_std if two else None,
                capsize=3,
                ecolor="0.25",
            )
            ref = paper_marker(g)
            unlike |= bool(unlike_paper(g))
            if ref:
                any_paper = True
                top.plot([i - 0.2], [ref["max"]], "D", color="black", ms=5, zorder=5)
                top.plot([i + 0.2], [ref["avg_last10"]], "D", mfc="white", mec="black", ms=5, zorder=5)
            success, (lo, hi) = g.shown_success
            bottom.bar(i, success, 0.6, color=c, yerr=[[success - lo], [hi - success]], capsize=4, ecolor="0.25")
            bottom.annotate(
                f"{success:.2f}{'' if g.heldout else ' ˡ'}",
                (i, success),
                xytext=(4, 2),
                textcoords="offset points",
                fontsize=7,
                color="0.2",
            )
        top.set_title(f"{task} ({seeds[0]} seed{'s' if seeds[0] > 1 else ''} each)" if len(seeds) == 1 else task)
        names = [(labels[g] if len(seeds) == 1 else f"{labels[g]} (n={g.seeds})") + unlike_paper(g) for g in rows]
        for i, g in enumerate(rows):
            if paper_marker(g) and paper_caveat(g):
                names[i] += " ⁱ"
                caveats[f"{labels[g]} on {task}"] = paper_caveat(g)
        names = [textwrap.fill(n, 22) for n in names]
        tilt = len(rows) > 3
        for ax in (top, bottom):
            ax.set_ylim(0, 1.08)
            ax.set_xlim(-0.6, len(rows) - 0.4)
            ax.grid(axis="y", alpha=0.3)
            ax.set_axisbelow(True)
        top.set_xticks(range(len(rows)), [""] * len(rows))
        bottom.set_xticks(
            range(len(rows)), names, rotation=35 if tilt else 0, ha="right" if tilt else "center", fontsize=7
        )
        # every panel names its score: a row can hold Push-T (coverage) beside robomimic (success)
        top.set_ylabel(score_label([rows[0].env]))
        if k % n_cols == 0:
            bottom.set_ylabel("success rate\n(held-out" + ("; ˡ last periodic)" if fallback else ")"))
    for k in range(len(tasks), n_rows * n_cols):  # the last row's empty places
        axes[2 * (k // n_cols), k % n_cols].set_visible(False)
        axes[2 * (k // n_cols) + 1, k % n_cols].set_visible(False)
    handles = [
        Patch(facecolor="0.45", label="max over evaluations"),
        Patch(facecolor="0.85", edgecolor="0.45", hatch="////", label="avg of last 10"),
    ]
    if any_paper:
        handles += [
            Line2D([], [], marker="D", ls="", color="black", ms=5, label="paper max"),
            Line2D([], [], marker="D", ls="", mfc="white", mec="black", ms=5, label="paper avg-last-10"),
        ]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(handles), frameon=False)
    fig.tight_layout(h_pad=0.6)
    fig.text(
        0.0,
        -0.01,
        "Bars: mean over seeds; score error bars ± std across seeds. Success: the checkpoint the max selected, on\n"
        "held-out test seeds (as in the tables; on Push-T an episode succeeds above 95% coverage, a stricter bar\n"
        "than its score); error bars: 95% Wilson CI over all seeds' episodes"
        + ("; ˡ final periodic evaluation\n(records without a held-out score)" if fallback else "")
        + ". Paper: Chi et al. 2023, Tables I/II (human demos, 3 seeds).\n"
        + LABEL_NOTE
        + (f"\n{UNLIKE_NOTE}" if unlike else "")
        + "".join(f"\nⁱ {name}: {textwrap.fill(why, 120)}" for name, why in sorted(caveats.items())),
        fontsize=7,
        color="0.3",
        va="top",
    )
    return _save(fig, stem)


def _curve(
    g: Group,
    records: Sequence[dict[str, Any]] | None = None,
    minutes_of: Callable[[dict[str, Any], dict[str, Any]], float] | None = None,
    best_so_far: bool = False,
) -> tuple[np.ndarray, ...]:
    """Steps evaluated by every seed (of ``records``, default the group's): step, mean minutes
    (``minutes_of(record, entry)``, default training wall minutes), mean / min / max score over seeds; with
    ``best_so_far`` each seed's score is its best evaluation up to that step (the max, cut there)."""
    records = g.records if records is None else records
    minutes_of = minutes_of or (lambda r, h: h["train_seconds"] / 60)
    per_seed = [{h["step"]: (minutes_of(r, h), h["score"]) for h in r["history"] if "score" in h} for r in records]
    steps = sorted(set.intersection(*(set(s) for s in per_seed))) if per_seed else []
    scores = np.array([[s[step][1] for s in per_seed] for step in steps]).reshape(len(steps), -1)
    if best_so_far and len(steps):
        scores = np.maximum.accumulate(scores, axis=0)
    minutes = np.array([np.mean([s[step][0] for s in per_seed]) for step in steps])
    return np.array(steps), minutes, scores.mean(1), scores.min(1), scores.max(1)


def plot_curves(groups: list[Group], stem: Path) -> list[Path]:
    """Score vs training step and vs training wall-time for one task; band = min-max over seeds."""
    plt = _mpl()
    labels = timed_labels(groups)
    colors = _colors(list(labels.values()))
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.6), sharey=True)
    longest = max((m for g in groups for m in _curve(g)[1][-1:]), default=0.0)
    scale, unit = (1 / 60, "h") if longest > 120 else (1.0, "min") if longest > 2 else (60.0, "s")
    for g in sorted(groups, key=lambda g: labels[g]):
        steps, minutes, mean, lo, hi = _curve(g)
        if not len(steps):
            continue
        minutes = minutes * scale
        c = colors[labels[g]]
        name = f"{labels[g]}{unlike_paper(g)}, {g.seeds} seed{'s' if g.seeds > 1 else ''}{cpu_kinds_note(g.records)}"
        for ax, x in zip(axes, (steps, minutes), strict=True):
            ax.plot(x, mean, "-o", color=c, ms=3, lw=1.5, label=name)
            if g.seeds > 1:
                ax.fill_between(x, lo, hi, color=c, alpha=0.18, lw=0)
        ref = paper_marker(g)
        if ref:
            axes[0].axhline(ref["max"], color=c, ls=":", lw=1)
    axes[0].set_xlabel("training step")
    axes[1].set_xlabel(f"training wall-time ({unit}, evaluations excluded)")
    axes[0].set_ylabel(score_label([g.env for g in groups], " "))
    axes[0].set_ylim(0, 1.05)
    for ax in axes:
        ax.grid(alpha=0.3)
    task = groups[0].task if groups else ""
    fig.suptitle(f"{task}: learning curves (line: mean over seeds, band: min-max; dotted: paper max)", fontsize=10)
    axes[1].legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    fig.tight_layout()
    return _save(fig, stem)


def _log_ticks(ax: Any) -> None:
    """A log x axis labelled at 1, 2 and 5 of each decade in plain numbers (matplotlib's default labels a short
    axis's minor ticks in powers of ten that run into each other)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def plot_equal_time(groups: list[Group], stem: Path) -> list[Path]:
    """Every policy's best score so far against training CPU-minutes (train wall time x the cores training kept
    busy, ``equal_time.cpu_minutes``; log axis) for one task: at each evaluation step, the mean over seeds of each
    seed's best evaluation up to it (what the equal-time table reads at its budgets), band min-max. CPU records
    only; nothing when none."""
    cpu = [g for g in groups if any(is_cpu(r) for r in g.records)]
    if not cpu:
        return []
    plt = _mpl()
    labels = config_labels(cpu)
    colors = _colors(list(labels.values()))
    fig, ax = plt.subplots(figsize=(7.0, 4.0))
    for g in sorted(cpu, key=lambda g: labels[g]):
        recs = [r for r in g.records if is_cpu(r)]
        steps, x, mean, lo, hi = _curve(g, recs, cpu_minutes, best_so_far=True)
        if not len(steps):
            continue
        c = colors[labels[g]]
        ax.plot(
            x,
            mean,
            "-o",
            color=c,
            ms=3,
            lw=1.5,
            label=f"{labels[g]}, {len(recs)} seed{'s' if len(recs) > 1 else ''}{cpu_kinds_note(recs)}",
        )
        if len(recs) > 1:
            ax.fill_between(x, lo, hi, color=c, alpha=0.15, lw=0)
    ax.set_xscale("log")
    _log_ticks(ax)
    ax.set_xlabel("training CPU-minutes (wall time x the cores training kept busy; evaluations excluded)")
    ax.set_ylabel(score_label([g.env for g in cpu], " ", what="best score so far"))
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.set_title(
        f"{cpu[0].task}: best score within each CPU budget, as the equal-time table\n"
        "(line: mean over seeds of each seed's best evaluation so far; band: min-max)"
    )
    fig.tight_layout()
    return _save(fig, stem)


def plot_latency(groups: list[Group], stem: Path) -> list[Path]:
    """Inference time per executed action against the score (max, ± std across seeds): a chunk's latency (one
    batched predict_action call, the tables' chunk latency) over the T_a actions the chunk executes, so a policy
    that plans every step (LSTM-GMM, BET, IBC: T_a = 1) and one that plans every 8 (DP) compare."""
    plt = _mpl()
    labels = timed_labels(groups)
    colors = _colors(list(labels.values()))
    markers = {task: "osD^vP*Xph<>"[i % 12] for i, task in enumerate(sorted({g.task for g in groups}))}
    batches = sorted({r["final"]["last_eval"].get("n_episodes") for g in groups for r in g.records} - {None})
    devices = sorted({device_names(g) for g in groups})
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    shown = [g for g in groups if np.isfinite(g.latency_ms)]
    per_action = {g: g.latency_ms / action_steps(g) for g in shown}
    for g in sorted(shown, key=lambda g: labels[g]):
        lat = [h["chunk_latency_ms"] for r in g.records for h in r["history"] if "chunk_latency_ms" in h]
        lat = [x / action_steps(g) for x in lat]
        cpu_records = [r for r in g.records if is_cpu(r)]  # a GPU's latency is not its host CPU's
        name = f"{labels[g]}, {g.task}" if len(markers) > 1 else labels[g]
        ax.errorbar(
            per_action[g],
            g.max,
            xerr=np.std(lat) if len(lat) > 1 else None,
            yerr=g.max_std if g.seeds > 1 else None,
            fmt=markers[g.task],
            color=colors[labels[g]],
            ms=7,
            capsize=3,
            # latency is a time: the legend names the CPU kinds behind it, as the time figures' do
            label=f"{name}, T_a={action_steps(g)}{cpu_kinds_note(cpu_records)}",
        )
    lat_values = list(per_action.values())
    if lat_values and max(lat_values) / max(min(lat_values), 1e-9) > 20:
        ax.set_xscale("log")
        _log_ticks(ax)
    # episodes run side by side, in memory-sized waves where their envs are large (evaluate.episodes_per_wave)
    batch = f"batch up to {batches[0]}" if len(batches) == 1 else "batch = the test episodes"
    ax.set_xlabel(
        f"inference time per executed action (ms: a chunk's latency / T_a; {batch}"
        + (f", {devices[0]})" if len(devices) == 1 else ")")
    )
    ax.set_ylabel(score_label([g.env for g in shown] or ["pusht"], what="max score, mean over seeds"))
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    ax.set_title("Inference time vs score\n(x error: std over evaluations; y error: std across seeds)")
    # no tight_layout: the legend beside the axes is wider than the figure, and _save's bbox_inches="tight"
    # grows the saved image around it instead
    return _save(fig, stem)
