"""Result records: one JSON file per (env, obs, policy, dataset, config, seed), written atomically,
and the comparison table built from them (with the paper's rows beside ours).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import os
import platform
import socket
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from dpbench.errors import DpbenchError

SCHEMA_VERSION = 1
REFERENCE_FILES = {"state": "chi2023_table1_state.csv", "image": "chi2023_table2_image.csv"}


def config_hash(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def environment_info() -> dict[str, Any]:
    import torch

    versions = {"python": sys.version.split()[0], "torch": torch.__version__}
    for name in ("numpy", "gymnasium", "pymunk", "diffusers"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # pragma: no cover - optional packages
            pass
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "versions": versions,
        "hardware": {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(), "host": socket.gethostname()},
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def write_json_atomic(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(payload, indent=1, sort_keys=False))
    os.replace(tmp, path)
    return path


def summarize_history(history: list[dict[str, Any]], key: str = "score") -> dict[str, float]:
    """The paper's two numbers over checkpoints: the max, and the mean of the last 10."""
    values = [h[key] for h in history if key in h]
    if not values:
        return {"max": float("nan"), "avg_last10": float("nan")}
    return {"max": float(max(values)), "avg_last10": float(np.mean(values[-10:]))}


def load_records(out: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """All records under ``out/records``; unreadable ones are reported, not dropped silently."""
    records, problems = [], []
    for path in sorted((out / "records").glob("*.json")):
        try:
            rec = json.loads(path.read_text())
            if rec.get("schema") != SCHEMA_VERSION or "final" not in rec:
                raise ValueError("missing fields")
            records.append(rec)
        except Exception as exc:
            problems.append(f"{path}: skipped, not a complete dpbench record ({type(exc).__name__})")
    return records, problems


def load_reference(obs_kind: str) -> list[dict[str, Any]]:
    name = REFERENCE_FILES["image" if obs_kind == "image" else "state"]
    text = resources.files("dpbench.reference").joinpath(name).read_text()
    rows = csv.DictReader(line for line in text.splitlines() if line and not line.startswith("#"))
    return [{**r, "max": float(r["max"]), "avg_last10": float(r["avg_last10"])} for r in rows]


PAPER_POLICY_NAMES = {"diffusion": "diffusion_cnn", "diffusion_cnn": "diffusion_cnn"}


def comparison_rows(records: list[dict[str, Any]], with_paper: bool = True) -> list[dict[str, Any]]:
    """One row per (env, obs, policy, preset, dataset): mean ± std across seeds."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in records:
        key = (r["env"], r["obs"], r["policy"], r["preset"], r["dataset"]["kind"], r["dataset"]["hash"], r["config_hash"])
        groups.setdefault(key, []).append(r)
    rows = []
    for (env, obs, policy, preset, dkind, dhash, chash), recs in sorted(groups.items()):
        maxes = np.array([x["final"]["max"] for x in recs])
        lasts = np.array([x["final"]["avg_last10"] for x in recs])
        succ = np.array([x["final"]["success_max"] for x in recs])
        wall = np.array([x["wall"]["total_s"] for x in recs])
        row = {
            "source": "dpbench",
            "env": env,
            "obs": obs,
            "policy": policy,
            "preset": preset,
            "dataset": f"{dkind}:{dhash[:8]}",
            "seeds": len(recs),
            "max": float(maxes.mean()),
            "max_std": float(maxes.std()),
            "avg_last10": float(lasts.mean()),
            "avg_last10_std": float(lasts.std()),
            "success_max": float(succ.mean()),
            "minutes_per_seed": float(wall.mean() / 60),
        }
        rows.append(row)
        if with_paper:
            ref_kind = "image" if obs == "image" else "state"
            paper_policy = PAPER_POLICY_NAMES.get(policy, policy)
            for ref in load_reference(ref_kind):
                if ref["policy"] == paper_policy and ref["task"] == env and ref["variant"] == "ph":
                    rows.append({"source": "paper (Chi et al. 2023)", "env": env, "obs": obs, "policy": paper_policy,
                                 "preset": "paper", "dataset": "human (ph)", "seeds": 3, "max": ref["max"],
                                 "avg_last10": ref["avg_last10"]})
    return rows


def format_table(rows: list[dict[str, Any]], fmt: str = "md") -> str:
    headers = ["source", "env", "obs", "policy", "preset", "dataset", "seeds", "max", "avg-last-10", "success (max)", "min/seed"]

    def cells(r: dict[str, Any]) -> list[str]:
        pm = lambda m, s: f"{m:.3f}" if s is None else f"{m:.3f} ± {s:.3f}"  # noqa: E731
        return [
            r["source"], r["env"], r["obs"], r["policy"], r["preset"], r["dataset"], str(r["seeds"]),
            pm(r["max"], r.get("max_std")), pm(r["avg_last10"], r.get("avg_last10_std")),
            f"{r['success_max']:.2f}" if "success_max" in r else "",
            f"{r['minutes_per_seed']:.1f}" if "minutes_per_seed" in r else "",
        ]

    body = [cells(r) for r in rows]
    if fmt == "csv":
        return "\n".join(",".join(c) for c in [headers, *body])
    if fmt != "md":
        raise DpbenchError(f"unknown table format '{fmt}'; use md or csv")
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(c) + " |" for c in body]
    return "\n".join(lines)
