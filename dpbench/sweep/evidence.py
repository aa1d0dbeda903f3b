"""What the dry run's estimates are measured from (``dpbench.sweep.estimate``): the records on disk, today's and
superseded ones; the env step times and demonstrator episode lengths the env benchmarks wrote to ``results/``; and
the paper's success rates, which tell how early a policy ends its episodes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dpbench.data.registry import variant_of
from dpbench.records import load_records, read_evidence
from dpbench.tasks import get_task

RESULTS = Path(__file__).resolve().parents[2] / "results"


def env_step_ms(results: Path = RESULTS) -> dict[tuple[str, str], float]:
    """Env step time in ms per (task, obs mode), from the env benchmarks' files in ``results``: robomimic's
    median step (low_dim; image with cameras) and Push-T's steps per second. Missing files give no entry."""
    out = {}
    try:
        for task, modes in json.loads((results / "robomimic_env.json").read_text())["envs"].items():
            for key, obs in (("low_dim", "low_dim"), ("cameras", "image")):
                if key in modes:
                    out[(task, obs)] = float(modes[key]["step_ms_median"])
    except (OSError, ValueError, KeyError):
        pass
    try:
        rates = json.loads((results / "pusht_env.json").read_text())["steps_per_second"]
        out |= {
            ("pusht", obs): 1000.0 / float(rates[key]) for obs, key in (("keypoints", "keypoints"), ("image", "pixels"))
        }
    except (OSError, ValueError, KeyError):
        pass
    return out


def demo_lengths(results: Path = RESULTS) -> dict[str, float]:
    """Each robomimic task's mean successful episode length in steps (its ph demonstrator's, measured on the test
    seeds by ``benchmarks/bench_robomimic_env.py``): how long an episode a policy solves runs. Missing: {}."""
    try:
        found = json.loads((results / "robomimic_env.json").read_text())["demonstrators"]
        return {k.split("/")[0]: float(v["mean_length"]) for k, v in found.items() if k.endswith("/ph")}
    except (OSError, ValueError, KeyError):
        return {}


SUPERSEDED = "_superseded"  # rate_records' mark on a record read from superseded/ (never written to disk)


def rate_records(results_dirs: list[Path]) -> list[dict[str, Any]]:
    """The records rates are measured in: each results dir's ``records/`` and, below them, ``superseded/`` (any
    depth). A superseded record's scores no longer stand, but its CPU-seconds per training step and per evaluation
    episode still measure its model on its task: ``superseded/robomimic-floor`` holds the only robomimic timings
    of IBC, for one. Records made under an older protocol rank below clean ones within a tier (``_clean``); where
    a cell id is in both, today's record is the one read. Files that are not complete records are skipped. A
    superseded record is returned with ``SUPERSEDED`` set, so each estimate can say it leans on one."""
    found: dict[str, dict[str, Any]] = {}
    for folder in results_dirs:
        for record in read_evidence(Path(folder) / "superseded", "**/*.json"):
            found.setdefault(record["cell_id"], {**record, SUPERSEDED: True})
    for folder in results_dirs:
        found |= {r["cell_id"]: r for r in load_records(Path(folder))[0]}
    return list(found.values())


def record_horizon(record: dict[str, Any]) -> int:
    """The horizon a record's episodes ran to: its evaluations' ``episode_steps``, else (older records) its
    task's horizon for the variant of its dataset."""
    steps = ((record.get("final") or {}).get("last_eval") or {}).get("episode_steps")
    if steps:
        return int(steps)
    return get_task(record["env"]).for_variant(variant_of(record.get("dataset") or {})).max_episode_steps


def expected_success(policy: str, env: str, obs: str, variant: str = "ph") -> float | None:
    """The share of test episodes ``policy`` is expected to solve on a robomimic task: the paper's avg-last-10
    success there (Tables I/II); None for Push-T (the paper reports coverage) or a policy the paper lacks."""
    from dpbench.results import paper_reference

    ref = paper_reference(policy, env, obs, variant) if get_task(env).metric == "success" else None
    return float(ref["avg_last10"]) if ref else None
