"""Named datasets: where the human Push-T demonstrations live, and the scripted-demo cache.

``--dataset`` accepts a name (``human``, ``scripted``) or a path. Every run records which one it
used, with a content hash, so a table never mixes datasets silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dpbench.data.collect import collect_pusht, collect_robomimic, robomimic_scripted_path
from dpbench.data.episodes import EpisodeStore, load_episodes
from dpbench.envs.pusht.episodes import SCRIPTED_VERSION
from dpbench.envs.robomimic.planners import PLANNERS
from dpbench.errors import DatasetMissing, DpbenchError, did_you_mean
from dpbench.host import usable_cores

HUMAN_PUSHT_NAME = "pusht_cchi_v7_replay.zarr"
DEFAULT_SCRIPTED_EPISODES = 200
# The scripted robomimic sets are as large as the human sets they stand in for: robomimic's ph datasets
# hold 200 demonstrations, its mh datasets 300 (6 operators x 50; TFDS robomimic_mh's train split: 300).
SCRIPTED_EPISODES = {"ph": DEFAULT_SCRIPTED_EPISODES, "mh": 300}


def cache_dir() -> Path:
    """Where scripted demonstrations are cached: ``$DPBENCH_CACHE``, else ``~/.cache/dpbench`` (not created here)."""
    return Path(os.environ.get("DPBENCH_CACHE", Path.home() / ".cache" / "dpbench"))


def portable_path(path: str | Path) -> str:
    """A path as records store it, never absolute: relative to the checkout (``../shared/...``
    for the shared data beside it), ``$DPBENCH_CACHE/...`` under the cache, else the file name."""
    p = Path(path)
    if not p.is_absolute():
        return p.as_posix()
    p = p.resolve()
    repo = Path(__file__).resolve().parents[2]
    for base, label in ((repo, ""), (repo.parent, ".."), (cache_dir().resolve(), "$DPBENCH_CACHE")):
        if p.is_relative_to(base):
            rel = p.relative_to(base).as_posix()
            return f"{label}/{rel}" if label else rel
    return p.name


def human_pusht_path() -> Path | None:
    """The paper's 206 human Push-T demos: $DPBENCH_PUSHT_ZARR, ../shared beside the checkout or
    the working directory, or the cache dir. None when absent."""
    env = os.environ.get("DPBENCH_PUSHT_ZARR")
    if env:
        return Path(env)
    repo = Path(__file__).resolve().parents[2]
    for base in (repo.parent / "shared", Path.cwd().parent / "shared", Path.cwd() / "shared"):
        candidate = base / "data" / "pusht" / HUMAN_PUSHT_NAME
        if candidate.exists():
            return candidate
    cached = cache_dir() / HUMAN_PUSHT_NAME
    return cached if cached.exists() else None


def scripted_pusht_path(n_episodes: int = DEFAULT_SCRIPTED_EPISODES) -> Path:
    """The cache file of ``n_episodes`` scripted Push-T demos; its name carries ``SCRIPTED_VERSION``, so a changed
    demonstrator never reuses a stale file."""
    return cache_dir() / f"pusht_scripted_v{SCRIPTED_VERSION}_{n_episodes}ep.hdf5"


# dataset name -> (demonstrator variant, action mode). ``scripted-delta`` / ``scripted-mh-delta``: the same
# demonstrations recorded as delta actions (robomimic's own datasets' velocity-style control), for the
# policies the original trains that way (LSTM-GMM, IBC, BET).
ROBOMIMIC_SCRIPTED = {
    "scripted": ("ph", "abs"),
    "scripted-mh": ("mh", "abs"),
    "scripted-delta": ("ph", "delta"),
    "scripted-mh-delta": ("mh", "delta"),
}


def scripted_name(variant: str, action_mode: str) -> str:
    """The name of robomimic's scripted demos of ``variant`` (ph | mh) in ``action_mode`` (abs | delta):
    scripted, scripted-mh, scripted-delta, scripted-mh-delta."""
    return next(name for name, recipe in ROBOMIMIC_SCRIPTED.items() if recipe == (variant, action_mode))


def data_variant(dataset_kind: str) -> str:
    """The paper's demo variant (ph | mh) a named dataset stands in for: ``scripted-mh`` and
    ``scripted-mh-delta`` are mh, every other name (and ``path``, see ``DatasetRef.variant``) ph."""
    return ROBOMIMIC_SCRIPTED.get(dataset_kind, ("ph", ""))[0]


def variant_of(identity: dict[str, Any]) -> str:
    """The variant of a dataset as records and checkpoints describe it (``DatasetRef.identity``): its
    ``variant``, else (identities older than the field) that of its name."""
    return identity.get("variant") or data_variant(identity.get("kind", ""))


# robomimic's filter keys that only its multi-human (mh) files have: the operators' quality groups
MH_MASKS = frozenset({"better", "okay", "worse"})


@dataclass(frozen=True)
class DatasetRef:
    """A resolved dataset: its kind, path and the store (loaded with the keys a run needs)."""

    kind: str  # "human" | "scripted" | "scripted-mh" | ... | "path"
    path: Path
    store: EpisodeStore

    @property
    def variant(self) -> str:
        """The demonstrations' variant (ph | mh), which sets the test horizon: from the name, else (a path)
        the variant dpbench collected it as (``env_args["dpbench"]``), else mh when the file has robomimic's
        mh filter keys (``mask/better``, ``okay``, ``worse``), else ph."""
        if self.kind != "path":
            return data_variant(self.kind)
        collected = (self.store.attrs.get("env_args") or {}).get("dpbench", {}).get("variant")
        if collected in ("ph", "mh"):
            return collected
        return "mh" if MH_MASKS & set(self.store.attrs.get("masks", ())) else "ph"

    def identity(self) -> dict[str, Any]:
        """What a record stores about the dataset: kind, portable path, content hash (over ``keys``, the
        arrays the run loaded), episode and step counts."""
        return {
            "kind": self.kind,
            "variant": self.variant,
            "path": portable_path(self.path),
            "hash": self.store.content_hash(),
            "keys": sorted(self.store.data),
            "episodes": self.store.n_episodes,
            "steps": self.store.n_steps,
        }


def scripted_robomimic_path(
    task_name: str,
    variant: str,
    cameras: tuple[str, ...] = (),
    n_episodes: int | None = None,
    action_mode: str = "abs",
) -> Path:
    """The cache file of ``n_episodes`` (None: the variant's ``SCRIPTED_EPISODES``) scripted demos of a robomimic
    task, demonstrator ``variant`` (ph | mh), ``cameras`` and ``action_mode`` (``robomimic_scripted_path`` under
    ``cache_dir()``)."""
    n = SCRIPTED_EPISODES[variant] if n_episodes is None else n_episodes
    return robomimic_scripted_path(cache_dir(), task_name, variant, n, cameras, action_mode)


def dataset_name_problem(task_name: str, dataset: str | None, names: Iterable[str]) -> str | None:
    """What is wrong with a ``--dataset`` that is neither one of ``names`` nor an existing file, and does not look
    like a path either (no folder, no file suffix): a misspelt name, which would otherwise read as a missing file.
    None when it is fine, or a path (a missing path has its own error when loaded)."""
    names = list(names)
    if dataset is None or dataset in names or dataset == "human":  # robomimic's human data: its own message
        return None
    if "/" in dataset or os.sep in dataset or dataset.startswith(("~", ".")) or Path(dataset).suffix:
        return None  # a path: a missing one has its own error when loaded
    if Path(dataset).exists():
        return None
    return (
        f"unknown dataset '{dataset}' for {task_name}; valid names: {', '.join(names)}, or a PATH to a file or "
        f"folder (no '{dataset}' in the working directory, {Path.cwd()}){did_you_mean([dataset], names)}"
    )


def _expand(dataset: str) -> Path:
    """``--dataset PATH`` with ``~`` expanded; raises DpbenchError for a ``~user`` that names no user."""
    try:
        return Path(dataset).expanduser()
    except RuntimeError:
        raise DpbenchError(f"--dataset {dataset}: cannot expand '~' (no such user or no home directory)") from None


def _check_name(task_name: str, dataset: str, names: Iterable[str]) -> None:
    problem = dataset_name_problem(task_name, dataset, names)
    if problem is not None:
        raise DpbenchError(problem)


def _resolve_robomimic(
    task_name: str, dataset: str | None, keys: Iterable[str] | None, progress: bool, collect: bool
) -> DatasetRef:
    """robomimic tasks: ``scripted`` (ph) / ``scripted-mh`` / ``scripted-delta`` demos, collected once and
    cached, or a PATH."""
    if dataset is None:
        dataset = "scripted"
    if dataset == "human":
        raise DpbenchError(
            f"dpbench does not ship robomimic's human datasets; download {task_name}'s low_dim.hdf5 from robomimic and "
            f"pass --dataset PATH, or use --dataset {' / '.join(ROBOMIMIC_SCRIPTED)} where a demonstrator exists"
        )
    if dataset in ROBOMIMIC_SCRIPTED:
        if task_name not in PLANNERS:
            raise DpbenchError(
                f"no scripted demonstrator for '{task_name}' yet (there are: {', '.join(PLANNERS)}); train on a "
                f"robomimic {task_name} low_dim.hdf5 with --dataset PATH (in a sweep file: dataset: PATH)"
            )
        variant, action_mode = ROBOMIMIC_SCRIPTED[dataset]
        if variant not in PLANNERS[task_name].VARIANTS:
            raise DpbenchError(
                f"{task_name} has {' / '.join(PLANNERS[task_name].VARIANTS)} demonstrations only, as in robomimic: "
                f"--dataset {dataset} does not exist for it; use --dataset {dataset.replace('-mh', '')}"
            )
        cameras = tuple(sorted(k[: -len("_image")] for k in (keys or ()) if k.endswith("_image")))
        path = scripted_robomimic_path(task_name, variant, cameras, action_mode=action_mode)
        if not path.exists() and not collect:
            raise DatasetMissing(
                f"{dataset} {task_name} demos not collected yet", portable_path(path), action_mode, kind=dataset
            )
        if not path.exists():
            print(
                f"[dpbench] collecting {SCRIPTED_EPISODES[variant]} scripted {task_name} ({variant}, {action_mode}) "
                f"demos into {path} (once)"
            )
            collect_robomimic(
                task_name,
                SCRIPTED_EPISODES[variant],
                path,
                variant,
                cameras,
                workers=usable_cores(),
                progress=progress,
                action_mode=action_mode,
            )
        return DatasetRef(dataset, path, load_episodes(path, keys, source=dataset))
    _check_name(task_name, dataset, ROBOMIMIC_SCRIPTED)
    path = _expand(dataset)
    return DatasetRef("path", path, load_episodes(path, keys))


def resolve_dataset(
    task_name: str,
    dataset: str | None,
    keys: Iterable[str] | None = None,
    progress: bool = True,
    collect: bool = True,
) -> DatasetRef:
    """Turn ``--dataset`` (None, a name or a path) into a loaded store. A named scripted dataset that is not
    cached yet is collected, or with ``collect=False`` raises DatasetMissing. Raises DpbenchError for a name
    that cannot be had here (no demonstrator, no human data)."""
    if task_name != "pusht":
        return _resolve_robomimic(task_name, dataset, keys, progress, collect)
    fallback = False  # no --dataset and no human demos: the scripted ones, said so
    if dataset in (None, "human"):
        path = human_pusht_path()
        if path is not None:
            return DatasetRef("human", path, load_episodes(path, keys, source="human"))
        if dataset == "human":
            raise DpbenchError(
                f"the human Push-T demos ({HUMAN_PUSHT_NAME}) were not found; set DPBENCH_PUSHT_ZARR=PATH (the "
                "original's pusht.zip, unzipped; README, Concepts), or use --dataset scripted (in a sweep file: "
                "dataset: scripted)"
            )
        dataset, fallback = "scripted", True
    if dataset == "scripted":
        path = scripted_pusht_path()
        if not path.exists() and not collect:
            raise DatasetMissing("scripted Push-T demos not generated yet", portable_path(path))
        if fallback:  # said where the demos are loaded or made: once, not for each cell that finds them missing
            print(
                "[dpbench] human Push-T demos not found; using scripted demonstrations instead (for the paper's "
                "data, set DPBENCH_PUSHT_ZARR=PATH to the original's pusht.zip, unzipped; README, Concepts)"
            )
        if not path.exists():
            print(f"[dpbench] generating {DEFAULT_SCRIPTED_EPISODES} scripted Push-T demos into {path} (once)")
            collect_pusht(DEFAULT_SCRIPTED_EPISODES, path, progress=progress)
        return DatasetRef("scripted", path, load_episodes(path, keys, source="scripted"))
    path = _expand(dataset)
    if not path.exists() and dataset in ROBOMIMIC_SCRIPTED:
        raise DpbenchError(f"'{dataset}' is a robomimic dataset; Push-T's are human, scripted or a PATH")
    _check_name(task_name, dataset, ("human", "scripted"))
    return DatasetRef("path", path, load_episodes(path, keys))


def list_datasets() -> list[tuple[str, str, str]]:
    """(name, env, where/status) for `dpbench list`."""
    human = human_pusht_path()
    scripted = scripted_pusht_path()
    rows = [
        ("human", "pusht", str(human) if human else "not found (set DPBENCH_PUSHT_ZARR)"),
        ("scripted", "pusht", f"{scripted} ({'cached' if scripted.exists() else 'generated on first use'})"),
    ]
    for task, planner in PLANNERS.items():
        for name, (variant, action_mode) in ROBOMIMIC_SCRIPTED.items():
            if variant not in planner.VARIANTS:
                continue
            path = scripted_robomimic_path(task, variant, action_mode=action_mode)
            rows.append((name, task, f"{path} ({'cached' if path.exists() else 'collected on first use'})"))
    return rows
