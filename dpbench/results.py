"""From records to comparison rows: seeds of one configuration grouped and summarised (mean and
std over seeds, Wilson intervals over pooled episodes, the held-out evaluation), how a record's config
drifted from today's preset, and the paper's reference numbers (Chi et al. 2023, Tables I/II).

The record schema and record I/O live in ``dpbench.records``, the tables in ``dpbench.tables``, their
md / csv / LaTeX / HTML rendering in ``dpbench.render``.
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from dpbench.config import build_configs, config_to_dict
from dpbench.data.registry import variant_of
from dpbench.errors import DpbenchError, did_you_mean
from dpbench.metrics import LateTrend, late_trend, mean_ci, summarize_history, wilson_ci
from dpbench.policies import available_policies, get_policy_class, record_policy_names
from dpbench.records import (
    PROTOCOL_VERSION,
    cell_seconds,
    data_identity,
    load_records,  # also re-exported: benchmarks/ import it from here, as before the split
    write_json_atomic,  # noqa: F401  (re-exported, likewise)
)

REFERENCE_FILES = {"state": "chi2023_table1_state.csv", "image": "chi2023_table2_image.csv"}


def load_reference(obs_kind: str) -> list[dict[str, Any]]:
    """The paper's rows for ``obs_kind`` ("image": Table II, else Table I): policy, task, variant, max, avg_last10."""
    name = REFERENCE_FILES["image" if obs_kind == "image" else "state"]
    text = resources.files("dpbench.reference").joinpath(name).read_text()
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    return [{**r, "max": float(r["max"]), "avg_last10": float(r["avg_last10"])} for r in rows]


PAPER_POLICY_NAMES = {"diffusion": "diffusion_cnn", "diffusion_cnn": "diffusion_cnn"}
PAPER_SOURCE = "paper (Chi et al. 2023)"


def paper_reference(policy: str, env: str, obs: str, variant: str = "ph") -> dict[str, Any] | None:
    """The paper's (Tables I/II) max / avg-last-10 for a policy on a task and demo variant, if reported."""
    paper_policy = PAPER_POLICY_NAMES.get(policy, policy)
    for ref in load_reference("image" if obs == "image" else "state"):
        if ref["policy"] == paper_policy and ref["task"] == env and ref["variant"] == variant:
            return ref
    return None


# -------------------------------------------------------------------------------- groups
def short_hash(dataset_hash: str) -> str:
    """A group's dataset hash(es) as tables print them: 8 hex digits each, "+"-joined."""
    return "+".join(h[:8] for h in dataset_hash.split("+"))


def joined_hashes(records: list[dict[str, Any]]) -> str:
    """The records' dataset content hashes in order of first appearance, "+"-joined: one per collection of
    the same demonstrations (scripted demos collected on other kinds of CPU, ``records.data_identity``)."""
    return "+".join(dict.fromkeys(r["dataset"]["hash"] for r in records))


@dataclass(frozen=True)
class Group:
    """The records of one (env, obs, policy, preset, dataset, config) over its seeds, summarised."""

    env: str
    obs: str
    policy: str
    preset: str
    dataset_kind: str
    dataset_hash: str  # the seeds' content hashes, "+"-joined where scripted collections differ (data_identity)
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
    # The demonstrations' variant (ph | mh): the records' dataset.variant, else that of the dataset's name.
    variant: str = "ph"
    drift: tuple[str, ...] = ()  # the config fields behind ``overrides`` (protocol aside)

    @property
    def task(self) -> str:
        """ "env/obs", the table's column."""
        return f"{self.env}/{self.obs}"

    @property
    def shown_success(self) -> tuple[float, tuple[float, float]]:
        """The success rate and its 95% CI that the tables, their CSV and the scores figure show: the held-out
        evaluation's (the max's checkpoint on fresh test seeds), else, for records without one, the final periodic
        evaluation's."""
        return (self.heldout.success, self.heldout.success_ci) if self.heldout else (self.success, self.success_ci)

    @property
    def evaluations(self) -> tuple[int, int]:
        """The fewest and the most evaluations a seed's run made (its max is taken over them)."""
        counts = [sum(1 for h in r["history"] if "score" in h) for r in self.records]
        return min(counts), max(counts)

    @cached_property  # every table asks several times (its mark, its legend, its csv)
    def late_trend(self) -> LateTrend | None:
        """Whether the seeds' scores were still rising over the last quarter of training (``metrics.late_trend``)."""
        return late_trend([[(h["step"], h["score"]) for h in r["history"] if "score" in h] for r in self.records])

    @property
    def last_evals(self) -> str:
        """ "" when every seed's avg-last-10 averages 10 evaluations; else " (last n)" (or "n-m" across seeds), the
        count it averages: a run with fewer than 10 evaluations averages them all."""
        lo, hi = (min(10, n) for n in self.evaluations)
        if lo >= 10:
            return ""
        return f" (last {lo})" if lo == hi else f" (last {lo}-{hi})"

    @property
    def paper_setting(self) -> bool:
        """Trained like the paper: its preset on the human demonstrations."""
        return self.preset == "paper" and self.dataset_kind == "human"


def late_trend_fields(g: Group | None) -> dict[str, Any]:
    """The csv columns of a group's ``late_trend``: the rise over the last quarter of training, its t, the
    evaluations and seeds it rests on, and the flag; empty where there is no group or too few evaluations."""
    trend = g.late_trend if g is not None else None
    if trend is None:
        return dict.fromkeys(("late_rise", "late_rise_t", "late_rise_points", "late_rise_seeds", "still_rising"))
    return {
        "late_rise": round(trend.rise, 4),
        "late_rise_t": round(trend.t, 2),
        "late_rise_points": trend.points,
        "late_rise_seeds": trend.seeds,
        "still_rising": trend.rising,
    }


@dataclass(frozen=True)
class Heldout:
    """A group's held-out evaluation: every seed's selected checkpoint on the same fresh test seeds.
    Means are over seeds; the 95% intervals are over all seeds' episodes pooled (scores and final
    coverage: normal approximation, but Wilson where every episode scored 0 or 1, as robomimic's
    success does; success: Wilson)."""

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
    binary = bool(np.isin(scores, (0.0, 1.0)).all())  # robomimic: the score is success, a proportion
    return Heldout(
        float(np.mean([p["score"] for p in parts])),
        wilson_ci(int(scores.sum()), len(scores)) if binary else mean_ci(scores),
        float(np.mean([p["success_rate"] for p in parts])),
        wilson_ci(int(success.sum()), len(success)),
        float(np.mean([p["final_mean"] for p in parts])),
        mean_ci(final),
        int(parts[0]["n_episodes"]),
    )


def k_min(record: dict[str, Any]) -> float:
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
    """A config value written the way ``--set`` reads it back (``dpbench.config.parse_value``)."""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    if value is None or isinstance(value, bool):
        return str(value).lower()
    return str(value)


def preset_drift(record: dict[str, Any]) -> dict[str, str] | None:
    """How a record's resolved config differs from its preset as the code defines it now: field -> value in
    ``--set`` syntax ({"train.eval_every": "1500"}; {} when it matches). Records outlive preset changes:
    this keeps a table from showing an older schedule as today's preset. Fields the record does not
    carry are skipped. None when the record has no resolved config or its policy no longer loads."""
    config = record.get("config", {})
    if not config.get("policy") or not config.get("train"):
        return None
    try:
        pcfg, tcfg = build_configs(
            get_policy_class(record["policy"]),
            record["preset"],
            image_obs="vision" in config["policy"],
            task=record.get("env"),
            variant=variant_of(record.get("dataset") or {}),
        )
    except (DpbenchError, ImportError):
        return None
    # every field, those the hash leaves out at their defaults too: a record's train.normalizer=original is drift
    now = _flatten({"policy": config_to_dict(pcfg, full=True), "train": config_to_dict(tcfg, full=True)})
    then = _flatten({"policy": config["policy"], "train": config["train"]})
    return {k: _as_override(v) for k, v in sorted(then.items()) if k in now and now[k] != v}


def _contended(recs: list[dict[str, Any]]) -> bool | None:
    flags = [part.get("contended") for r in recs for part in r.get("wall", {}).get("contention", {}).values()]
    known = [f for f in flags if f is not None]
    return any(known) if known else None


def group_records(records: list[dict[str, Any]]) -> list[Group]:
    """Seeds of the same configuration together; configurations that differ never mix. Scripted demonstrations
    collected on other kinds of CPU are one dataset (``records.data_identity``); a seed recorded on more than
    one of them counts once, by its oldest record."""
    buckets: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        key = (
            r["env"],
            r["obs"],
            r["policy"],
            r["preset"],
            r["dataset"]["kind"],
            data_identity(r["dataset"]),
            r["config_hash"],
        )
        buckets.setdefault(key, []).append(r)
    groups = []
    for (env, obs, policy, preset, dkind, _, chash), recs in sorted(
        buckets.items(), key=lambda kv: tuple(map(str, kv[0]))
    ):
        # one record per seed: the oldest, where a seed was also trained on another collection of the same demos
        recs = sorted(
            {r["seed"]: r for r in sorted(recs, key=lambda r: r.get("date", ""), reverse=True)}.values(),
            key=lambda r: r["seed"],
        )
        dhash = joined_hashes(recs)
        maxes = np.array([r["final"]["max"] for r in recs], dtype=float)
        lasts = np.array([r["final"]["avg_last10"] for r in recs], dtype=float)
        kmins = np.array([k_min(r) for r in recs], dtype=float)
        outcomes = [bool(s) for r in recs for s in r["final"]["last_eval"]["episode_success"]]
        per_seed = [np.mean(r["final"]["last_eval"]["episode_success"] or [0.0]) for r in recs]
        latency = [h["chunk_latency_ms"] for r in recs for h in r["history"] if "chunk_latency_ms" in h]
        drift = preset_drift(recs[0])
        if drift is None:
            drift = {k: str(v) for k, v in sorted(recs[0].get("config", {}).get("overrides", {}).items())}
        overrides = ", ".join(f"{k}={v}" for k, v in drift.items())
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
                float(np.mean([cell_seconds(r) for r in recs]) / 60),
                float(np.mean(latency)) if latency else float("nan"),
                _contended(recs),
                tuple(recs),
                variant_of(recs[0]["dataset"]),
                tuple(drift),
            )
        )
    return groups


def load_all(out: str | Path) -> list[dict[str, Any]]:
    """Every record under OUT/records; corrupt or partial files are named on stderr and skipped. Raises
    DpbenchError when there is none."""
    records, problems = load_records(Path(out))
    for p in problems:
        print(f"[dpbench] warning: {p}", file=sys.stderr)
    if not records:
        if any(Path(out).glob("*.json")):  # the records folder itself, e.g. --out results/records
            raise DpbenchError(
                f"no result records under {out}/records, but {out} holds .json files: --out names the results dir "
                f"above the records folder (--out {Path(out).parent})"
            )
        raise DpbenchError(
            f"no result records under {out}/records: --out names a results dir to read (what `dpbench run --out` "
            "wrote; default results); run `dpbench run` first if there is none"
        )
    return records


def select_records(
    records: list[dict[str, Any]],
    envs: list[str] | None,
    policies: list[str] | None,
    out: str | Path,
    obs: list[str] | None = None,
    allow_empty: bool = False,
    variants: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The records of ``envs`` / ``policies`` / ``obs`` / demo ``variants`` (ph | mh; None: any; a registered
    policy alias, diffusion_cnn, counts as its class's name; Push-T's human demos are ph). A name that is neither
    registered nor in a record, a task with none of ``variants`` (Push-T and ToolHang are ph only), or a selection
    that matches nothing (unless ``allow_empty``), is a DpbenchError that lists the valid names."""
    from dpbench.envs import PH_ONLY, VARIANTS
    from dpbench.policies import paper_labels
    from dpbench.tasks import TASKS

    def value(r: dict[str, Any], what: str) -> str:
        return variant_of(r["dataset"]) if what == "variant" else r[what]

    wanted = {"env": envs, "policy": policies, "obs": obs, "variant": variants}
    held = {k: sorted({value(r, k) for r in records}) for k in wanted}
    known = {
        "env": set(TASKS) | set(held["env"]),
        "policy": set(available_policies()) | set(held["policy"]),
        "obs": {o for t in TASKS.values() for o in t.obs_modes} | set(held["obs"]),
        "variant": set(VARIANTS),
    }
    plural = {"env": "envs", "policy": "policies", "obs": "obs modes", "variant": "variants"}
    for what, names in wanted.items():
        # a module:Class policy is checked by importing it (get_policy_class names what is wrong)
        unknown = [n for n in names or () if n not in known[what] and ":" not in n]
        if unknown:
            guess = did_you_mean(unknown, known[what], paper_labels() if what == "policy" else None)
            raise DpbenchError(
                f"unknown {what} '{', '.join(unknown)}'; valid {plural[what]}: {', '.join(sorted(known[what]))}{guess}"
            )
    ph_only = [e for e in envs or () if e in PH_ONLY]
    if variants and "ph" not in variants and ph_only:
        raise DpbenchError(
            f"{', '.join(ph_only)} {'has' if len(ph_only) == 1 else 'have'} ph demonstrations only (Push-T one human "
            "set, ToolHang robomimic's ph only): no record or column is mh there; drop it from --env, or use "
            "--variant ph"
        )
    if policies:
        wanted["policy"] = record_policy_names(policies, held["policy"])
    records = [r for r in records if all(not v or value(r, k) in v for k, v in wanted.items())]
    if not records and not allow_empty:
        raise DpbenchError(
            f"no result records under {out}/records match --env/--policy/--obs/--variant; they hold envs "
            f"{', '.join(held['env'])}, policies {', '.join(held['policy'])}, obs modes {', '.join(held['obs'])} "
            f"and variants {', '.join(held['variant'])} (Push-T's count as ph)"
        )
    return records
