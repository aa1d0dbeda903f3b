"""The comparison tables built from result records: the policies x tasks pivot (with the paper's rows
beside ours) and the tidy one-row-per-configuration CSV, in every format ``dpbench table`` writes.

Records are grouped and summarised by ``dpbench.results``; ``dpbench.render`` turns a ``Table`` into text.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dpbench.errors import DpbenchError
from dpbench.metrics import K_LAST, LATE_TREND_RULE
from dpbench.records import PROTOCOL_VERSION
from dpbench.render import DAGGER, RENDERERS, Table, mean_std, tidy_csv
from dpbench.results import (
    PAPER_POLICY_NAMES,
    PAPER_SOURCE,
    Group,
    group_records,
    k_min,
    late_trend_fields,
    paper_reference,
    short_hash,
)
from dpbench.tasks import get_task

TABLE_FORMATS = ("md", "csv", "latex", "html")
FIT_WIDTH_COLUMNS = 10  # a pivot wider than this is scaled to the page in LaTeX


def pivot_table(groups: list[Group], with_paper: bool = False) -> Table:
    """Policies (rows) against tasks (env/obs, columns). Per task: max / avg-last-10 / k-min-train-loss
    (mean ± std over seeds); the held-out score of the selected checkpoint; its success rate; and, on
    Push-T, its final coverage, each with a 95% CI. Groups without a held-out evaluation show the final
    evaluation's success rate, marked. Paper rows follow each policy's rows; cells trained unlike the paper
    (preset or dataset) carry a dagger."""
    tasks = sorted({g.task for g in groups})

    def base(g: Group) -> tuple:
        return (g.policy, g.preset, g.dataset_kind, g.overrides)

    per_cell: dict[tuple, int] = {}
    for g in groups:
        per_cell[(base(g), g.task)] = per_cell.get((base(g), g.task), 0) + 1
    clash = {b for (b, _), n in per_cell.items() if n > 1}  # same label, different data or config: split rows

    rows: dict[tuple, dict[str, Group]] = {}
    for g in groups:
        key = base(g) + ((short_hash(g.dataset_hash), g.config_hash) if base(g) in clash else ("", ""))
        rows.setdefault(key, {})[g.task] = g
    show_overrides = any(g.overrides for g in groups)
    headers = ["source", "policy", "preset", "dataset", *(["overrides"] if show_overrides else []), "seeds"]
    n_labels = len(headers)  # LaTeX left-aligns these
    coverage_tasks = {t for t in tasks if t.startswith("pusht/")}
    for t in tasks:
        headers += [
            f"{t} max / avg-last-10 / k-min-loss",
            f"{t} held-out (95% CI)",
            f"{t} success (95% CI)",
            *([f"{t} final coverage (95% CI)"] if t in coverage_tasks else []),
        ]

    def ci(value: float, bounds: tuple[float, float], mark: str = "") -> str:
        return f"{value:.2f} [{bounds[0]:.2f}, {bounds[1]:.2f}]{mark}"

    def nan_or(text: str, value: float) -> str:
        return "–" if np.isnan(value) else text

    body: list[list[str]] = []
    daggers: set[str] = set()
    rising = False  # a cell still improving when its budget ended
    last_eval_success = mixed = hashed = False
    for policy in sorted({k[0] for k in rows}):
        for key in sorted(k for k in rows if k[0] == policy):
            _, preset, dkind, overrides, dhash, chash = key
            cells = rows[key]
            counts = sorted({g.seeds for g in cells.values()})
            mixed |= len(counts) > 1
            hashed |= bool(chash or dhash)
            row = [
                "dpbench",
                policy,
                f"{preset} ({chash})" if chash else preset,
                f"{dkind}:{dhash}" if dhash else dkind,
                *([overrides] if show_overrides else []),
                str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}",
            ]
            for t in tasks:
                g = cells.get(t)
                if g is None:
                    row += ["–"] * (4 if t in coverage_tasks else 3)
                    continue
                mark = "" if g.paper_setting else f" {DAGGER}"
                if mark:
                    daggers.add(f"preset {g.preset}, {g.dataset_kind} dataset")
                if g.late_trend and g.late_trend.rising:  # after the dagger check: this mark is no setting
                    mark, rising = mark + f" ↗{g.late_trend.rise:+.2f}", True
                h = g.heldout
                row += [
                    f"{mean_std(g.max, g.max_std, g.seeds)} / {mean_std(g.avg_last10, g.avg_last10_std, g.seeds)}"
                    f"{g.last_evals} / "
                    f"{nan_or(mean_std(g.k_min, g.k_min_std, g.seeds), g.k_min)}"
                    + (f" (n={g.seeds})" if len(counts) > 1 else "")  # the row's seeds column is a range
                    + mark,
                    ci(h.score, h.score_ci) if h else "–",
                    ci(*g.shown_success, "" if h else " ˡ"),
                ]
                if t in coverage_tasks:
                    row.append(ci(h.final, h.final_ci) if h else "–")
                last_eval_success |= h is None
            body.append(row)
        if with_paper:
            variants = sorted(
                {g.variant for k, v in rows.items() if k[0] == policy for g in v.values()}, reverse=True
            )  # ph first
            for variant in variants:
                refs = {t: paper_reference(policy, *t.split("/", 1), variant=variant) for t in tasks}
                if not any(refs.values()):
                    continue
                row = [
                    PAPER_SOURCE,
                    PAPER_POLICY_NAMES.get(policy, policy),
                    "paper",
                    f"human ({variant})",
                    *([""] if show_overrides else []),
                    "3",
                ]
                for t in tasks:
                    ref = refs[t]
                    row += [
                        f"{ref['max']:.2f} / {ref['avg_last10']:.2f} / –" if ref else "–",
                        "–",
                        "–",
                        *(["–"] if t in coverage_tasks else []),
                    ]
                body.append(row)
    # with K_LAST or fewer evaluations both average all of them: only longer runs can tell the two apart
    recs = [r for g in groups for r in g.records if sum("score" in h for h in r["history"]) > K_LAST]
    same = sum(abs(k_min(r) - r["final"]["avg_last10"]) < 1e-9 for r in recs)
    notes = [
        "max / avg-last-10: the paper's two numbers (its Tables I/II): the best evaluation during training and the "
        "mean of the last 10 evaluations; marked (last n) where a run evaluated n < 10 times and both average all n. "
        "k-min-loss, a cross-check: the mean of the 10 evaluations with the lowest training loss (the original "
        "repository's k_min_train_loss, which its README names as the paper's second number; with a quick "
        "preset's 11 evaluations and a falling loss those are the last 10"
        + (
            f": it equals avg-last-10 in {same} of the {len(recs)} records here with more than 10 evaluations"
            if recs
            else ""
        )
        + "). Scores: robomimic the success rate; Push-T the mean over test episodes of the episode's max coverage "
        "reward. Mean ± sample std across seeds.",
        "held-out (95% CI): the checkpoint the max selected, scored on fresh test seeds that no selection saw "
        "(train.heldout_episodes per seed, 200 in the quick and paper presets, from seed 200000); "
        "mean over seeds, interval over all seeds' episodes pooled (normal; Wilson where the score is success, "
        "as on robomimic). success and final coverage (Push-T: the goal coverage at the episode's end) are that "
        "evaluation's, Wilson and normal intervals.",
    ]
    if rising:
        notes.append(
            f"↗+x: still rising when its budget ended: {LATE_TREND_RULE}; x is the rise over that quarter. A longer "
            "budget would likely raise its avg-last-10, and its max where below 1."
        )
    if mixed:
        notes.append("seeds a-b: the row's tasks have different seed counts; each task's first cell gives its (n=k).")
    if hashed:
        notes.append(
            "preset (hash), dataset:hash: one policy has several configurations (the config hash, "
            "records' config_hash; a policy outside dpbench gets a new one whenever its file changes) or several "
            "collections of one dataset (the demonstrations' content hash) on record; each is its own row, and "
            "seeds pool only within one."
        )
    if last_eval_success:
        notes.append(
            "ˡ success of the final periodic evaluation (train.eval_episodes test seeds): the records carry no "
            "held-out score (made before it existed, run with train.heldout_episodes=0, or resumed without the "
            "selected weights)."
        )
    if show_overrides:
        notes.append(
            "overrides: how a row's settings differ from its preset as dpbench defines it now, so a run made "
            "under an older preset shows its schedule here (and an older evaluation protocol its label, "
            "protocol vN)."
        )
        if any("protocol v" in g.overrides for g in groups):
            notes.append(
                f"protocol vN: made under an older evaluation protocol than today's ({PROTOCOL_VERSION}: the "
                "paper's Push-T test states and data split, evaluation that leaves training alone, per-episode "
                "noise; docs/DESIGN.md). Not comparable with rows without the label."
            )
    if daggers:
        notes.append(
            f"{DAGGER} not the paper's setting (preset paper on the human demonstrations): "
            f"{'; '.join(sorted(daggers))}. Compare with the paper's rows with care."
        )
    if with_paper and any(r[0] == PAPER_SOURCE for r in body):
        notes.append(
            f"{PAPER_SOURCE}: Tables I (state) and II (image), human demos (ph: proficient, mh: multi-human), "
            "3 seeds x 50 test initial conditions; the paper reports no success rate for Push-T. dpbench's "
            "robomimic rows train on scripted demonstrations (scripted = ph-like, scripted-mh = mh-like), "
            "not on the paper's human data."
        )
    # LaTeX: more than a page's width of columns is scaled to the line width (narrow with --env for legibility)
    return Table(headers, body, notes, label_cols=n_labels, fit_width=len(headers) > FIT_WIDTH_COLUMNS)


def tidy_rows(groups: list[Group], with_paper: bool = False) -> list[dict[str, Any]]:
    """One machine-readable row per group (and per paper reference): the CSV format. ``policy`` is dpbench's name,
    ``paper_policy`` the paper's (the row name of ``--layout paper``); ``variant`` the demonstrations' (ph | mh); a
    std over one seed is empty, not 0. ``success`` is the pivot's success column: the held-out evaluation's where
    recorded, else the final periodic one's (``success_source`` says which; ``last_eval_*`` is always the latter);
    ``heldout_final`` (the final coverage) is Push-T's only."""
    rows: list[dict[str, Any]] = []
    for g in groups:
        one = g.seeds < 2  # one seed has no spread: its std is empty, not 0
        h, coverage = g.heldout, get_task(g.env).metric == "coverage"
        rows.append(
            {
                "source": "dpbench",
                "env": g.env,
                "obs": g.obs,
                "policy": g.policy,
                "paper_policy": PAPER_POLICY_NAMES.get(g.policy, g.policy),
                "preset": g.preset,
                "dataset": g.dataset_kind,
                "variant": g.variant,
                "dataset_hash": g.dataset_hash,
                "config_hash": g.config_hash,
                "overrides": g.overrides,
                "seeds": g.seeds,
                "max": g.max,
                "max_std": None if one else g.max_std,
                "avg_last10": g.avg_last10,
                "avg_last10_std": None if one else g.avg_last10_std,
                "k_min_train_loss": g.k_min,
                "k_min_train_loss_std": None if one else g.k_min_std,
                **late_trend_fields(g),
                "heldout": g.heldout.score if g.heldout else None,
                "heldout_ci_low": g.heldout.score_ci[0] if g.heldout else None,
                "heldout_ci_high": g.heldout.score_ci[1] if g.heldout else None,
                "heldout_success": h.success if h else None,
                "heldout_success_ci_low": h.success_ci[0] if h else None,
                "heldout_success_ci_high": h.success_ci[1] if h else None,
                "heldout_final": h.final if h and coverage else None,
                "heldout_final_ci_low": h.final_ci[0] if h and coverage else None,
                "heldout_final_ci_high": h.final_ci[1] if h and coverage else None,
                "heldout_episodes_per_seed": h.episodes if h else None,
                "success": g.shown_success[0],
                "success_ci_low": g.shown_success[1][0],
                "success_ci_high": g.shown_success[1][1],
                "success_source": "heldout" if h else "last_eval",
                "last_eval_success": g.success,
                "last_eval_success_ci_low": g.success_ci[0],
                "last_eval_success_ci_high": g.success_ci[1],
                "last_eval_episodes": g.episodes,
                "minutes_per_seed": round(g.minutes_per_seed, 3),
                "chunk_latency_ms": round(g.latency_ms, 3),
                "timing_contended": g.contended,
                "paper_setting": g.paper_setting,
            }
        )
    if with_paper:
        seen = set()
        for g in groups:
            variant = g.variant
            ref = paper_reference(g.policy, g.env, g.obs, variant)
            key = (PAPER_POLICY_NAMES.get(g.policy, g.policy), g.env, g.obs, variant)
            if ref and key not in seen:
                seen.add(key)
                rows.append(
                    {
                        "source": PAPER_SOURCE,
                        "env": g.env,
                        "obs": g.obs,
                        "policy": key[0],
                        "paper_policy": key[0],
                        "preset": "paper",
                        "dataset": "human",
                        "variant": variant,
                        "seeds": 3,
                        "max": ref["max"],
                        "avg_last10": ref["avg_last10"],
                        "paper_setting": True,
                    }
                )
    return rows


def format_table(records: list[dict[str, Any]], fmt: str = "md", with_paper: bool = False) -> str:
    """The comparison table of these records: md, latex or html pivot, or tidy csv (``TABLE_FORMATS``).

    Raises DpbenchError for an unknown format."""
    if fmt not in TABLE_FORMATS:
        raise DpbenchError(f"unknown table format '{fmt}'; use one of {', '.join(TABLE_FORMATS)}")
    groups = group_records(records)
    if fmt == "csv":
        return tidy_csv(tidy_rows(groups, with_paper), "source")
    table = pivot_table(groups, with_paper)
    return RENDERERS[fmt](table)
