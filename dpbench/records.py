"""Result records: the schema of the one JSON file each benchmark cell writes
(``OUT/records/<cell_id>.json``), and reading and writing them.

A record is built by ``Record(...).to_dict()`` (``dpbench.runner.run_cell`` is the one writer) and read
back as a plain dict by ``read_record`` / ``load_records``. Its top-level fields, in file order:

==================  =====================================================================================
``schema``          record layout version (``SCHEMA_VERSION``); readers refuse other values
``protocol``        evaluation/training protocol version (``PROTOCOL_VERSION``); absent in old records = 1
``cell_id``         ``<env>-<obs>__<policy>__<dataset kind>-<hash[:8]>__<preset>-<config_hash>__seed<N>``
                    (``:`` and ``.`` in the policy name as ``_``): the file name, and the checkpoint
                    folder ``OUT/work/<cell_id>/``
``command``         the ``dpbench ...`` command line that made it (machine paths made portable)
``policy``          policy name as given (a registered name, entry point or ``module:Class``)
``env``             task name (``pusht``, ``lift``, ...)
``obs``             observation mode (``keypoints``, ``state``, ``image``, ``low_dim``, ...)
``action_mode``     robomimic: ``abs`` or ``delta`` (from the dataset); Push-T: null
``seed``            training seed (also seeds the evaluations' sampling noise)
``preset``          config preset the run started from (``smoke`` / ``quick`` / ``paper``)
``config_hash``     first 10 hex digits of the SHA-256 of the resolved policy + train config and obs mode
                    (and, for a policy outside dpbench, its code's digest: ``policies.policy_source``)
``config``          ``{"policy": {...}, "train": {...}, "overrides": {"key": "value"}}``: the resolved
                    configs and the ``--set`` overrides (strings) that produced them
``dataset``         ``{"kind", "path", "hash", "episodes", "steps"}``: which demonstrations, where (portable
                    path), their content hash, episode and step counts (scripted demonstrations collected
                    on another kind of CPU hash differently: ``data_identity`` says when they are the same)
``dataset_check``   robomimic: how the dataset's column layout was checked against the env; else null
``data_split``      ``{"split_seed", "val_ratio", "max_train_episodes", "n_train_episodes",
                    "train_episodes", "val_episodes"}``: the episode indices trained on and held out
``history``         one entry per periodic evaluation: ``step``, ``train_seconds`` (training wall seconds so
                    far, evaluations excluded), ``loss`` (last batch), ``train_loss`` (mean since the last
                    evaluation), ``score``, ``success_rate``, ``eval_seconds``, ``chunk_latency_ms``
``final``           the run's summary (``FinalScores``): ``max``, ``avg_last10``, ``k_min_train_loss``,
                    ``success_max``, ``success_avg_last10``, ``last_eval`` (the final evaluation, episode by
                    episode), ``heldout`` (the selected checkpoint on fresh test seeds, or null)
``wall``            wall-clock seconds (``WallTimes``): ``train_s``, ``eval_s``, ``total_s`` (0.1 s), and
                    ``contention`` (``{"train": ..., "eval": ...}``, ``dpbench.contention.ContentionMeter``;
                    over every process of a resumed cell from 2026-12-02 on, its last one before), and from
                    2026-12-04 ``processes``: each process that trained the cell (step it began at, CPU kind,
                    device), so a cell resumed on another kind of CPU says its times mix kinds
``checkpoint``      the final policy's weights, relative to the results dir (``work/<cell_id>/...``)
``versions``        dpbench's version and commit (``0.1.0+g899a5dd``, ``.dirty`` for uncommitted code;
                    ``dpbench.source``) and package versions (python, torch, numpy, ...;
                    ``dpbench.host.environment_info``); ``policy_source`` for a policy outside dpbench
``hardware``        CPU model, its family/model numbers (``cpu_family``: "25/1"; from commit d595606
                    on), cores, usable cores, cgroup CPU limit, torch threads, torch's SIMD level
                    (``cpu_capability``: AVX2, AVX512), OpenMP wait policy, dpbench's glibc malloc
                    settings (``malloc``; both from commit d127b68 on), host name, ``device``
                    (``cpu`` or the CUDA device's name)
``date``            when the record was written, ISO 8601, UTC, seconds
==================  =====================================================================================

Scores are the task's (Push-T: mean over test episodes of the episode's max goal coverage, in [0, 1]);
success rates are fractions in [0, 1]; times are seconds unless the name says otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

SCHEMA_VERSION = 1
# The evaluation/training protocol a record was made under; records without the field are 1.
# 2: Push-T test states placed as the original's legacy_test; the paper's Push-T data split (seed 42,
#    at most 90 training episodes); evaluation leaves training's RNG untouched; each episode's sampling
#    noise depends only on the sampling seed and its test seed; DDIM's first step at the top noise level.
#    Also under 2 (no record predates it): policies trained on mh demonstrations run 500-step test
#    episodes on Lift, Can and Square, as the original's (records' last_eval.episode_steps).
PROTOCOL_VERSION = 2

# The fields tables and plots rely on ("a.b": field b of the mapping a); read_record checks them.
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


def config_hash(payload: dict[str, Any]) -> str:
    """The first 10 hex digits of the SHA-256 of ``payload`` as sorted-key JSON (a record's ``config_hash``)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:10]


def write_text_atomic(path: Path, text: str) -> Path:
    """Write via a temp file and rename: readers see the old file or the whole new one, never a part.
    Creates the parent folders; returns ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
    return path


def write_json_atomic(path: Path, payload: dict[str, Any]) -> Path:
    """``payload`` as JSON (indent 1, keys in insertion order), written atomically (``write_text_atomic``)."""
    return write_text_atomic(path, json.dumps(payload, indent=1, sort_keys=False))


# ---------------------------------------------------------------------------- the schema
@dataclass
class DataSplit:
    """A record's ``data_split``: which dataset episodes trained the policy (the rest of the non-validation
    episodes are unused when ``max_train_episodes`` caps them)."""

    split_seed: int  # seeds the train/validation shuffle
    val_ratio: float  # fraction of the episodes held out for validation
    max_train_episodes: int | None  # cap on training episodes (the paper's Push-T protocol: 90), None: all
    train_episodes: list[int]  # dataset episode indices trained on
    val_episodes: list[int]  # dataset episode indices held out

    def to_dict(self) -> dict[str, Any]:
        """The JSON mapping (adds ``n_train_episodes``)."""
        return {
            "split_seed": self.split_seed,
            "val_ratio": self.val_ratio,
            "max_train_episodes": self.max_train_episodes,
            "n_train_episodes": len(self.train_episodes),
            "train_episodes": self.train_episodes,
            "val_episodes": self.val_episodes,
        }


@dataclass
class FinalScores:
    """A record's ``final``: the run summarised over its periodic evaluations (``dpbench.metrics``)."""

    max: float  # best evaluation score (the paper's first number)
    avg_last10: float  # mean score of the last 10 evaluations
    k_min_train_loss: float  # mean score of the 10 evaluations with the lowest training loss (NaN if unknown)
    success_max: float  # best success rate over the evaluations
    success_avg_last10: float  # mean success rate of the last 10 evaluations
    last_eval: dict[str, Any]  # the final evaluation, ``dpbench.evaluate.EvalResult.to_dict()``
    # The selected (max) checkpoint on fresh test seeds (``dpbench.selection.heldout_evaluation``), or None
    # when disabled or not possible.
    heldout: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """The JSON mapping, fields in this order."""
        return {
            "max": self.max,
            "avg_last10": self.avg_last10,
            "k_min_train_loss": self.k_min_train_loss,
            "success_max": self.success_max,
            "success_avg_last10": self.success_avg_last10,
            "last_eval": self.last_eval,
            "heldout": self.heldout,
        }


@dataclass
class WallTimes:
    """A record's ``wall``: where the cell's wall-clock time went, in seconds (stored rounded to 0.1 s)."""

    train_s: float  # training, evaluations excluded
    eval_s: float  # every evaluation: periodic, final and held-out
    # The whole cell, data preparation and checkpoint writing included; for a cell resumed after a stop, at least
    # its training plus evaluations over all its processes (the stopped process's overhead is not known).
    total_s: float
    # The cores the cell kept busy and whether other processes shared them: ContentionMeter.summary() over training
    # and over evaluation.
    contention_train: dict[str, Any]
    contention_eval: dict[str, Any]
    # Every process that trained the cell, in order (``dpbench.train.TrainState.processes``): ``from_step``,
    # ``cpu_kind``, ``device``. One entry: the cell ran in one go; more than one CPU kind: the times above mix them.
    processes: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON mapping: seconds rounded to 0.1, ``contention: {"train": ..., "eval": ...}``, then ``processes``
        (left out when empty, as records before 2026-12-04 hold it)."""
        out = {
            "train_s": round(self.train_s, 1),
            "eval_s": round(self.eval_s, 1),
            "total_s": round(self.total_s, 1),
            "contention": {"train": self.contention_train, "eval": self.contention_eval},
        }
        return out | ({"processes": self.processes} if self.processes else {})


def process_kinds(record: dict[str, Any]) -> set[str | None]:
    """The CPU kinds (``dpbench.host.cpu_kind``) of the processes that trained a record's cell (``wall.processes``;
    None: a process that did not say). Empty for records before 2026-12-04, which name only their last process's
    ``hardware``; more than one kind: the record's times mix them."""
    return {p.get("cpu_kind") for p in (record.get("wall") or {}).get("processes") or []}


def cell_seconds(record: dict[str, Any]) -> float:
    """A record's whole-cell wall time in seconds: ``wall.total_s``, or where more, its training plus every
    evaluation in it (periodic, final and held-out). Records of resumed runs written before the runner took
    that maximum (b9ca894, 2026-11-30) counted only their last process: three committed ones have ``total_s`` below
    their own ``train_s``."""
    wall, final = record["wall"], record.get("final") or {}
    evals = sum(h.get("eval_seconds", 0.0) for h in record.get("history", []))
    evals += ((final.get("heldout") or {}).get("wall_s")) or 0.0
    return max(wall["total_s"], wall["train_s"] + max(wall.get("eval_s", 0.0), evals))


def busy_cores(record: dict[str, Any], phase: str) -> float:
    """The cores a record's cell kept busy in ``phase`` ("train" | "eval"): the meter's
    ``wall.contention.<phase>.own_cores`` where recorded (from commit 96b3e50), else the run's torch thread count,
    which only bounds it (docs/DESIGN.md). Wall seconds x this is the phase's CPU seconds, for the dry run's
    estimates and the equal-time view alike."""
    own = (record.get("wall", {}).get("contention", {}).get(phase) or {}).get("own_cores")
    return float(own) if own else float((record.get("hardware") or {}).get("torch_threads") or 1)


@dataclass
class Record:
    """One cell's result record; ``to_dict()`` is the JSON written to ``OUT/records/<cell_id>.json``.
    Field meanings and units: this module's docstring. ``versions``, ``hardware`` and ``date`` are
    ``dpbench.host.environment_info(device=...)``'s keys."""

    cell_id: str
    command: str
    policy: str
    env: str
    obs: str
    action_mode: str | None
    seed: int
    preset: str
    config_hash: str
    policy_config: dict[str, Any]  # the resolved policy config (``config_to_dict``), stored as config.policy
    train_config: dict[str, Any]  # the resolved train config, stored as config.train
    overrides: dict[str, str]  # the --set overrides, stored as config.overrides
    dataset: dict[str, Any]
    dataset_check: dict[str, Any] | None
    data_split: DataSplit
    history: list[dict[str, Any]]
    final: FinalScores
    wall: WallTimes
    checkpoint: str
    versions: dict[str, str]
    hardware: dict[str, Any]
    date: str
    schema: int = SCHEMA_VERSION
    protocol: int = PROTOCOL_VERSION

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready nested dicts, keys in the order record files have always had."""
        return {
            "schema": self.schema,
            "protocol": self.protocol,
            "cell_id": self.cell_id,
            "command": self.command,
            "policy": self.policy,
            "env": self.env,
            "obs": self.obs,
            "action_mode": self.action_mode,
            "seed": self.seed,
            "preset": self.preset,
            "config_hash": self.config_hash,
            "config": {"policy": self.policy_config, "train": self.train_config, "overrides": self.overrides},
            "dataset": self.dataset,
            "dataset_check": self.dataset_check,
            "data_split": self.data_split.to_dict(),
            "history": self.history,
            "final": self.final.to_dict(),
            "wall": self.wall.to_dict(),
            "checkpoint": self.checkpoint,
            "versions": self.versions,
            "hardware": self.hardware,
            "date": self.date,
        }


# -------------------------------------------------------------------------------- reading
# What '+' between content hashes means, for the tables' notes (data_identity says why)
RECOLLECTED = (
    "separate collections of one scripted recipe (same demonstrator version, task, variant, episode and step "
    "counts), made on CPUs with other SIMD kernels; their content hashes differ in the last float bits, not in the "
    "demonstrations (measured on Square ph: actions within 1.7e-6; dpbench.records.data_identity, "
    "docs/measurements.md)"
)


def data_identity(dataset: dict[str, Any]) -> tuple:
    """What makes two records' ``dataset`` entries the same demonstrations: the content hash, except for
    dpbench's scripted datasets, where it is their recipe: kind, file name (task, variant, demonstrator
    version, episode count, cameras), episode and step counts.

    Why: a scripted collection is seeded, but its arrays differ in the last bits between CPUs whose numpy
    and OpenBLAS pick other SIMD kernels (AVX-512 or AVX2), so their content hashes differ while the
    demonstrations do not: measured on Square ph delta (200 episodes), the same episode lengths, actions
    within 1.7e-6, object positions within 2.3e-5 m (docs/measurements.md, "The same demonstrations on
    another CPU"). Seeds trained on either collection are one cell; records keep their own hash."""
    kind = str(dataset.get("kind", ""))
    if kind.startswith("scripted") and "episodes" in dataset and "steps" in dataset:
        return kind, PurePosixPath(str(dataset.get("path", ""))).name, dataset["episodes"], dataset["steps"]
    return kind, dataset.get("hash")


def read_record(path: Path) -> dict[str, Any]:
    """One record file, checked for the fields tables and plots use (``REQUIRED_FIELDS``).

    Raises ValueError saying what is wrong: unreadable, corrupt JSON, another schema, a missing field."""
    try:
        rec = json.loads(Path(path).read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"truncated or corrupt JSON ({exc.msg}, line {exc.lineno})") from None
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


def record_policy(policy: str, policy_cls: type) -> str:
    """The policy as records name it, given as ``policy`` (``--policy``): a registered name's class name (aliases
    such as diffusion_cnn share diffusion's records), else the ``module:Class`` given."""
    return policy_cls.name if ":" not in policy else policy


def policy_slug(policy: str, policy_cls: type) -> str:
    """The policy's part of a cell id: ``record_policy`` with ``:`` and ``.`` as ``_``."""
    return record_policy(policy, policy_cls).replace(":", "_").replace(".", "_")


def make_cell_id(env: str, obs: str, policy: str, data: str, preset: str, chash: str, seed: int) -> str:
    """``<env>-<obs>__<policy>__<data>__<preset>-<config_hash>__seed<N>``; ``data``: ``<kind>-<hash[:8]>``."""
    return f"{env}-{obs}__{policy}__{data}__{preset}-{chash}__seed{seed}"


def split_cell_id(cell_id: str) -> tuple[str, str, str]:
    """A cell id's parts around its dataset: (``<env>-<obs>__<policy>``, ``<kind>-<hash[:8]>``,
    ``<preset>-<config_hash>__seed<N>``); split from the right, so a policy name may hold ``__``."""
    head, data, preset_config, seed = cell_id.rsplit("__", 3)
    return head, data, f"{preset_config}__{seed}"


def record_of_same_demos(path: Path, kind: str, dataset: dict[str, Any]) -> Path | None:
    """The record beside ``path`` (``OUT/records/<cell_id>.json``, absent) of the same cell trained on the same
    demonstrations (``data_identity`` of ``dataset``) under another content hash, else None."""
    head, _, tail = split_cell_id(path.stem)
    want = data_identity(dataset)
    for other in sorted(path.parent.glob(f"{head}__{kind}-*__{tail}.json")):
        try:
            theirs = read_record(other)["dataset"]
        except ValueError:  # an unreadable record is reported where records are listed
            continue
        # the same arrays loaded too (an obs mode's keys may have changed since), where the record lists them
        same_keys = "keys" not in theirs or "keys" not in dataset or theirs["keys"] == dataset["keys"]
        if data_identity(theirs) == want and same_keys:
            return other
    return None


def read_evidence(folder: Path, pattern: str = "*.json") -> list[dict[str, Any]]:
    """The complete records among ``folder``'s files matching ``pattern`` (a glob; "**/*.json" for any depth), in
    path order. For evidence folders (``results/superseded``), which keep other files too: those are skipped, not
    reported (``load_records`` reports them)."""
    records = []
    for path in sorted(Path(folder).glob(pattern)):
        try:
            records.append(read_record(path))
        except ValueError:
            continue
    return records


def load_records(out: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """(records, problems): every record under ``out/records`` in file-name order, and one message per
    file that is not a complete record (reported, not dropped silently)."""
    records, problems = [], []
    for path in sorted((Path(out) / "records").glob("*.json")):
        try:
            records.append(read_record(path))
        except ValueError as exc:
            problems.append(
                f"{path}: skipped, not a complete dpbench record ({exc}); restore it from version control, or "
                "delete it and rerun its cell"
            )
    return records, problems
