"""Result records: one JSON file per (env, obs, policy, dataset, config, seed), written atomically,
and the comparison table built from them (with the paper's rows beside ours).
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from dpbench.errors import DpbenchError
from dpbench.metrics import mean_ci, summarize_history, wilson_ci

SCHEMA_VERSION = 1
# The evaluation/training protocol a record was made under; records without the field are 1.
# 2: Push-T test states placed as the original's legacy_test; the paper's Push-T data split (seed 42,
#    at most 90 training episodes); evaluation leaves training's RNG untouched; each episode's sampling
#    noise depends only on the sampling seed and its test seed; DDIM's first step at the top noise level.
PROTOCOL_VERSION = 2
REFERENCE_FILES = {"state": "chi2023_table1_state.csv", "image": "chi2023_table2_image.csv"}


def config_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def write_text_atomic(path: Path, text: str) -> Path:
    """Write via a temp file and rename: readers see the old file or the whole new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json_atomic(path: Path, payload: dict[str, Any]) -> Path:
    return write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=False))


# ------------------------------------------------------------------------------- records
REQUIRED_FIELDS = (
    "cell_id",
    "policy",
    "env",
    "obs",
    "seed",
    "preset",
    "config_hash",
    "dataset.kind",
    "dataset.hash",
    "history",
    "final.max",
    "final.avg_last10",
    "final.last_eval.episode_success",
    "wall.total_s",
)


def read_record(path: Path) -> dict[str, Any]:
    """One record file, checked for the fields tables and plots use; ValueError says what is wrong."""
    try:
        rec = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"truncated or corrupt JSON: {exc.msg} at line {exc.lineno}") from None
    except OSError as exc:
        raise ValueError(f"unreadable: {exc.strerror}") from None
    if not isinstance(rec, dict) or rec.get("schema") != SCHEMA_VERSION:
        raise ValueError(f"not a schema-{SCHEMA_VERSION} record")
    for name in REQUIRED_FIELDS:
        node: Any = rec
        keys = name.split(".")
        for i, key in enumerate(keys):
            if not isinstance(node, dict) or key not in node:
                raise ValueError(f"missing field '{'.'.join(keys[: i + 1])}'")
            node = node[key]
    return rec


def load_records(out: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """All records under ``out/records``; unreadable ones are reported, not dropped silently."""
    records, problems = [], []
    for path in sorted((Path(out) / "records").glob("*.json")):
        try:
            records.append(read_record(path))
        except ValueError as exc:
            problems.append(f"{path}: skipped, not a complete dpbench record ({exc})")
    return records, problems


def load_reference(obs_kind: str) -> list[dict[str, Any]]:
    name = REFERENCE_FILES["image" if obs_kind == "image" else "state"]
    text = resources.files("dpbench.reference").joinpath(name).read_text()
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    return [{**r, "max": float(r["max"]), "avg_last10": float(r["avg_last10"])} for r in rows]


PAPER_POLICY_NAMES = {"diffusion": "diffusion_cnn", "diffusion_cnn": "diffusion_cnn"}
PAPER_SOURCE = "paper (Chi et al. 2023)"


def data_variant(dataset_kind: str) -> str:
    """The paper's demo variant a dataset stands in for: mh for multi-modal sets (scripted-mh), else ph."""
    return "mh" if dataset_kind.endswith("mh") else "ph"


def paper_reference(policy: str, env: str, obs: str, variant: str = "ph") -> dict[str, Any] | None:
    """The paper's (Tables I/II) max / avg-last-10 for a policy on a task and demo variant, if reported."""
    paper_policy = PAPER_POLICY_NAMES.get(policy, policy)
    for ref in load_reference("image" if obs == "image" else "state"):
        if ref["policy"] == paper_policy and ref["task"] == env and ref["variant"] == variant:
            return ref
    return None


# -------------------------------------------------------------------------------- groups
@dataclass(frozen=True)
class Group:
    """The records of one (env, obs, policy, preset, dataset, config) over its seeds, summarised."""

    env: str
    obs: str
    policy: str
    preset: str
    dataset_kind: str
    dataset_hash: str
    config_hash: str
    overrides: str  # how the config differs from its preset as defined now (preset_drift), "key=value, ..."
    seeds: int
    max: float  # mean over seeds of each seed's max over evaluations
    max_std: float  # sample std across seeds (0 for one seed)
    avg_last10: float
    avg_last10_std: float
    k_min: float  # mean over seeds of k_min_train_loss (dpbench.metrics), NaN when a record cannot give it
    k_min_std: float
    success: float  # mean over seeds of the final evaluation's success rate
    success_ci: tuple[float, float]  # Wilson 95% over the pooled final-evaluation episodes of all seeds
    episodes: int
    # The selected (max) checkpoint on fresh seeds (records' final.heldout), pooled over seeds; None when
    # any seed's record lacks it.
    heldout: Heldout | None
    minutes_per_seed: float
    latency_ms: float  # mean chunk latency (one batched predict_action call) over all evaluations
    # Timing from runs whose cores other jobs shared (records' wall.contention): True, False, or None
    # when the records predate the measurement.
    contended: bool | None
    records: tuple[dict[str, Any], ...] = field(repr=False, compare=False)

    @property
    def task(self) -> str:
        return f"{self.env}/{self.obs}"

    @property
    def paper_setting(self) -> bool:
        """Trained like the paper: its preset on the human demonstrations."""
        return self.preset == "paper" and self.dataset_kind == "human"


@dataclass(frozen=True)
class Heldout:
    """A group's held-out evaluation: every seed's selected checkpoint on the same fresh test seeds.
    Means are over seeds; the 95% intervals are over all seeds' episodes pooled (scores and final
    coverage: normal approximation; success: Wilson)."""

    score: float
    score_ci: tuple[float, float]
    success: float
    success_ci: tuple[float, float]
    final: float
    final_ci: tuple[float, float]
    episodes: int  # per seed


def _heldout(recs: list[dict[str, Any]]) -> Heldout | None:
    parts = [r["final"].get("heldout") for r in recs]
    if not parts or any(not p for p in parts):
        return None
    scores = np.concatenate([p["episode_scores"] for p in parts])
    success = np.concatenate([p["episode_success"] for p in parts]).astype(bool)
    final = np.concatenate([p["episode_final"] for p in parts])
    return Heldout(
        float(np.mean([p["score"] for p in parts])),
        mean_ci(scores),
        float(np.mean([p["success_rate"] for p in parts])),
        wilson_ci(int(success.sum()), len(success)),
        float(np.mean([p["final_mean"] for p in parts])),
        mean_ci(final),
        int(parts[0]["n_episodes"]),
    )


def _k_min(record: dict[str, Any]) -> float:
    """k_min_train_loss of a record; recomputed from the history for records that predate the field."""
    value = record["final"].get("k_min_train_loss")
    return float(value) if value is not None else summarize_history(record["history"])["k_min_train_loss"]


def _std(values: np.ndarray) -> float:
    return float(values.std(ddof=1)) if len(values) > 1 else 0.0


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _as_override(value: Any) -> str:
    """A config value written the way ``--set`` reads it back (dpbench.policy._coerce)."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return str(value)


def preset_drift(record: dict[str, Any]) -> str | None:
    """How a record's resolved config differs from its preset as the code defines it now, as
    "policy.x=v, train.y=w" in ``--set`` syntax ("" when it matches). Records outlive preset changes:
    this keeps a table from showing an older schedule as today's preset. Fields the record does not
    carry are skipped. None when the record has no resolved config or its policy no longer loads."""
    from dpbench.policy import build_configs, config_to_dict, get_policy_class

    config = record.get("config", {})
    if not config.get("policy") or not config.get("train"):
        return None
    try:
        pcfg, tcfg = build_configs(
            get_policy_class(record["policy"]),
            record["preset"],
            image_obs="vision" in config["policy"],
            task=record.get("env"),
        )
    except (DpbenchError, ImportError):
        return None
    now = _flatten({"policy": config_to_dict(pcfg), "train": config_to_dict(tcfg)})
    then = _flatten({"policy": config["policy"], "train": config["train"]})
    return ", ".join(f"{k}={_as_override(v)}" for k, v in sorted(then.items()) if k in now and now[k] != v)


def _contended(recs: list[dict[str, Any]]) -> bool | None:
    flags = [part.get("contended") for r in recs for part in r.get("wall", {}).get("contention", {}).values()]
    known = [f for f in flags if f is not None]
    return any(known) if known else None


def group_records(records: list[dict[str, Any]]) -> list[Group]:
    """Seeds of the same configuration together; configurations that differ never mix."""
    buckets: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        key = (
            r["env"],
            r["obs"],
            r["policy"],
            r["preset"],
            r["dataset"]["kind"],
            r["dataset"]["hash"],
            r["config_hash"],
        )
        buckets.setdefault(key, []).append(r)
    groups = []
    for (env, obs, policy, preset, dkind, dhash, chash), recs in sorted(buckets.items()):
        recs = sorted(recs, key=lambda r: r["seed"])
        maxes = np.array([r["final"]["max"] for r in recs], dtype=float)
        lasts = np.array([r["final"]["avg_last10"] for r in recs], dtype=float)
        kmins = np.array([_k_min(r) for r in recs], dtype=float)
        outcomes = [bool(s) for r in recs for s in r["final"]["last_eval"]["episode_success"]]
        per_seed = [np.mean(r["final"]["last_eval"]["episode_success"] or [0.0]) for r in recs]
        latency = [h["chunk_latency_ms"] for r in recs for h in r["history"] if "chunk_latency_ms" in h]
        overrides = preset_drift(recs[0])
        if overrides is None:
            overrides = ", ".join(f"{k}={v}" for k, v in sorted(recs[0].get("config", {}).get("overrides", {}).items()))
        protocol = recs[0].get("protocol", 1)
        if protocol != PROTOCOL_VERSION:  # an older protocol is part of what the row means
            overrides = ", ".join(x for x in (f"protocol v{protocol}", overrides) if x)
        groups.append(
            Group(
                env,
                obs,
                policy,
                preset,
                dkind,
                dhash,
                chash,
                overrides,
                len(recs),
                float(maxes.mean()),
                _std(maxes),
                float(lasts.mean()),
                _std(lasts),
                float(kmins.mean()),
                _std(kmins),
                float(np.mean(per_seed)),
                wilson_ci(sum(outcomes), len(outcomes)),
                len(outcomes),
                _heldout(recs),
                float(np.mean([r["wall"]["total_s"] for r in recs]) / 60),
                float(np.mean(latency)) if latency else float("nan"),
                _contended(recs),
                tuple(recs),
            )
        )
    return groups


# --------------------------------------------------------------------------------- tables
TABLE_FORMATS = ("md", "csv", "latex", "html")
DAGGER = "†"


@dataclass
class Table:
    """A format-agnostic table: headers, rows of text cells, and the notes printed under it."""

    headers: list[str]
    rows: list[list[str]]
    notes: list[str]


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
        key = base(g) + ((g.dataset_hash[:8], g.config_hash) if base(g) in clash else ("", ""))
        rows.setdefault(key, {})[g.task] = g
    show_overrides = any(g.overrides for g in groups)
    headers = ["source", "policy", "preset", "dataset", *(["overrides"] if show_overrides else []), "seeds"]
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

    def pm(mean: float, std: float, n: int) -> str:
        return f"{mean:.3f}" if n < 2 else f"{mean:.3f} ± {std:.3f}"

    body: list[list[str]] = []
    daggers: set[str] = set()
    last_eval_success = False
    for policy in sorted({k[0] for k in rows}):
        for key in sorted(k for k in rows if k[0] == policy):
            _, preset, dkind, overrides, dhash, chash = key
            cells = rows[key]
            counts = sorted({g.seeds for g in cells.values()})
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
                h = g.heldout
                row += [
                    f"{pm(g.max, g.max_std, g.seeds)} / {pm(g.avg_last10, g.avg_last10_std, g.seeds)} / "
                    f"{nan_or(pm(g.k_min, g.k_min_std, g.seeds), g.k_min)}{mark}",
                    ci(h.score, h.score_ci) if h else "–",
                    ci(h.success, h.success_ci) if h else ci(g.success, g.success_ci, " ˡ"),
                ]
                if t in coverage_tasks:
                    row.append(ci(h.final, h.final_ci) if h else "–")
                last_eval_success |= h is None
            body.append(row)
        if with_paper:
            variants = sorted({data_variant(k[2]) for k in rows if k[0] == policy}, reverse=True)  # ph first
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
    notes = [
        "max / avg-last-10 / k-min-loss: the paper's two numbers, the best evaluation during training and the mean "
        "of the last 10, then the mean of the 10 evaluations with the lowest training loss (the original repository's "
        "k_min_train_loss, which its README names as the paper's second number); Push-T score: mean over test episodes "
        "of the episode's max coverage reward; mean ± sample std across seeds.",
        "held-out (95% CI): the checkpoint the max selected, scored on fresh test seeds that no selection saw (200 per "
        "seed from seed 200000); mean over seeds, interval over all seeds' episodes pooled. success and final coverage "
        "(Push-T: the goal coverage at the episode's end) are that evaluation's, Wilson and normal intervals.",
    ]
    if last_eval_success:
        notes.append(
            "ˡ success of the final periodic evaluation (50 test seeds): the records predate the held-out evaluation."
        )
    if show_overrides:
        notes.append(
            "overrides: how a row's settings differ from its preset as dpbench defines it now, so a run made "
            "under an older preset shows its schedule here."
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
    return Table(headers, body, notes)


def tidy_rows(groups: list[Group], with_paper: bool = False) -> list[dict[str, Any]]:
    """One machine-readable row per group (and per paper reference): the CSV format."""
    rows: list[dict[str, Any]] = []
    for g in groups:
        rows.append(
            {
                "source": "dpbench",
                "env": g.env,
                "obs": g.obs,
                "policy": g.policy,
                "preset": g.preset,
                "dataset": g.dataset_kind,
                "dataset_hash": g.dataset_hash,
                "config_hash": g.config_hash,
                "overrides": g.overrides,
                "seeds": g.seeds,
                "max": g.max,
                "max_std": g.max_std,
                "avg_last10": g.avg_last10,
                "avg_last10_std": g.avg_last10_std,
                "k_min_train_loss": g.k_min,
                "k_min_train_loss_std": g.k_min_std,
                "heldout": g.heldout.score if g.heldout else None,
                "heldout_ci_low": g.heldout.score_ci[0] if g.heldout else None,
                "heldout_ci_high": g.heldout.score_ci[1] if g.heldout else None,
                "heldout_success": g.heldout.success if g.heldout else None,
                "heldout_final": g.heldout.final if g.heldout else None,
                "heldout_episodes_per_seed": g.heldout.episodes if g.heldout else None,
                "success": g.success,
                "success_ci_low": g.success_ci[0],
                "success_ci_high": g.success_ci[1],
                "episodes": g.episodes,
                "minutes_per_seed": round(g.minutes_per_seed, 3),
                "chunk_latency_ms": round(g.latency_ms, 3),
                "timing_contended": g.contended,
                "paper_setting": g.paper_setting,
            }
        )
    if with_paper:
        seen = set()
        for g in groups:
            variant = data_variant(g.dataset_kind)
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
                        "preset": "paper",
                        "dataset": f"human ({variant})",
                        "seeds": 3,
                        "max": ref["max"],
                        "avg_last10": ref["avg_last10"],
                        "paper_setting": True,
                    }
                )
    return rows


def format_table(records: list[dict[str, Any]], fmt: str = "md", with_paper: bool = False) -> str:
    """The comparison table of these records: md, latex or html pivot, or tidy csv."""
    if fmt not in TABLE_FORMATS:
        raise DpbenchError(f"unknown table format '{fmt}'; use one of {', '.join(TABLE_FORMATS)}")
    groups = group_records(records)
    if fmt == "csv":
        rows = tidy_rows(groups, with_paper)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["source"], lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    table = pivot_table(groups, with_paper)
    return {"md": _render_md, "latex": _render_latex, "html": _render_html}[fmt](table)


def _render_md(t: Table) -> str:
    lines = ["| " + " | ".join(t.headers) + " |", "|" + "---|" * len(t.headers)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in t.rows]
    return "\n".join([*lines, "", *(f"- {n}" for n in t.notes)])


_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "#": r"\#",
    "_": r"\_",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    DAGGER: r"$^\dagger$",
    "–": "--",
}


def _latex(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in text)


def _render_latex(t: Table) -> str:
    n_label = len(t.headers) - 2 * sum(1 for h in t.headers if h.endswith("success (95% CI)"))
    lines = [
        r"\begin{tabular}{" + "l" * n_label + "c" * (len(t.headers) - n_label) + "}",
        r"\toprule",
        " & ".join(_latex(h) for h in t.headers) + r" \\",
        r"\midrule",
    ]
    lines += [" & ".join(_latex(c) for c in row) + r" \\" for row in t.rows]
    lines += [r"\bottomrule", r"\end{tabular}", ""]
    lines += [_latex(n) + r"\\" for n in t.notes]
    return "\n".join(lines)


def _render_html(t: Table) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in t.headers)
    body = "\n".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    notes = "\n".join(f"<p>{esc(n)}</p>" for n in t.notes)
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>\n{notes}"
