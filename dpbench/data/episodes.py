"""EpisodeStore: demonstrations as named arrays concatenated over episodes.

Readers: the Diffusion Policy zarr layout (``data/<key>``, ``meta/episode_ends``) and the
robomimic HDF5 layout (``data/demo_i/{actions, obs/<key>}``, ``env_args`` attribute). Writer:
robomimic-layout HDF5. Every loader validates what it reads and raises ``DpbenchError`` naming
the file and the problem, never a bare traceback.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dpbench.errors import DpbenchError

ACTION_KEY = "action"
STATES_KEY = "states"  # robomimic: data/demo_i/states, the simulator state before each action


@dataclass
class EpisodeStore:
    """Arrays of equal length N (first axis = time, episodes back to back) plus episode ends."""

    data: dict[str, np.ndarray]
    episode_ends: np.ndarray
    source: str = "memory"  # "human", "scripted", or a path
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.episode_ends = np.asarray(self.episode_ends, dtype=np.int64)
        validate(self.data, self.episode_ends, where=self.source)

    @property
    def n_episodes(self) -> int:
        """Number of episodes."""
        return len(self.episode_ends)

    @property
    def n_steps(self) -> int:
        """N: the total number of steps over all episodes."""
        return int(self.episode_ends[-1])

    @property
    def episode_starts(self) -> np.ndarray:
        """(n_episodes,) int64: each episode's first step index."""
        return np.concatenate([[0], self.episode_ends[:-1]]).astype(np.int64)

    @property
    def episode_lengths(self) -> np.ndarray:
        """(n_episodes,): each episode's number of steps."""
        return np.diff(np.concatenate([[0], self.episode_ends]))

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Episode ``i``'s arrays, each (T_i, ...), as views into ``data``."""
        s, e = int(self.episode_starts[i]), int(self.episode_ends[i])
        return {k: v[s:e] for k, v in self.data.items()}

    def content_hash(self) -> str:
        """sha256 (first 16 hex digits) over the episode ends and every loaded array (name, dtype,
        shape, and the values of non-image arrays).

        It covers the arrays this store loaded: a run loads its obs mode's keys and the actions,
        so its record's hash identifies exactly the data it trained on, and another obs mode of the
        same file hashes differently. Records list the keys (``dataset.keys``);
        ``dpbench data info PATH --keys K1,K2`` reproduces their hash. Image values (4-D arrays) are
        left out to keep it cheap; their shapes are still part of it.
        """
        h = hashlib.sha256()
        h.update(self.episode_ends.astype("<i8").tobytes())
        for key in sorted(self.data):
            arr = self.data[key]
            h.update(f"{key}:{arr.dtype.str}:{arr.shape}".encode())
            if arr.ndim < 4:
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (what ``dpbench data info`` prints): source, episode and step counts, episode length
        min/mean/max, each key's shape and dtype, and the content hash."""
        lengths = self.episode_lengths
        return {
            "source": self.source,
            "episodes": self.n_episodes,
            "steps": self.n_steps,
            "episode_length": {"min": int(lengths.min()), "mean": float(lengths.mean()), "max": int(lengths.max())},
            "keys": {k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in sorted(self.data.items())},
            "content_hash": self.content_hash(),
        }

    @classmethod
    def from_episodes(
        cls, episodes: Iterable[dict[str, np.ndarray]], source: str = "memory", **attrs: Any
    ) -> EpisodeStore:
        """A store of per-episode dicts of (T_i, ...) arrays, concatenated in order; every episode must have the same
        keys, including 'action' (whose length gives T_i). ``attrs`` become the store's attrs. Raises DpbenchError
        when there are no episodes, the keys differ, or the arrays fail ``validate``."""
        episodes = list(episodes)
        if not episodes:
            raise DpbenchError(f"{source}: no episodes to store")
        keys = sorted(episodes[0])
        for i, ep in enumerate(episodes):
            if sorted(ep) != keys:
                raise DpbenchError(f"{source}: episode {i} has keys {sorted(ep)}, expected {keys}")
        data = {k: np.concatenate([ep[k] for ep in episodes]) for k in keys}
        ends = np.cumsum([len(ep[ACTION_KEY]) for ep in episodes])
        return cls(data, ends, source=source, attrs=dict(attrs))


def validate(data: dict[str, np.ndarray], episode_ends: np.ndarray, where: str) -> None:
    """Raise DpbenchError unless the arrays form a well-shaped, finite, non-empty dataset."""
    if ACTION_KEY not in data:
        raise DpbenchError(f"{where}: no '{ACTION_KEY}' array (keys found: {sorted(data) or 'none'})")
    if len(episode_ends) == 0 or data[ACTION_KEY].shape[0] == 0:
        raise DpbenchError(f"{where}: the dataset is empty (0 episodes)")
    if np.any(np.diff(episode_ends) <= 0) or episode_ends[0] <= 0:
        raise DpbenchError(f"{where}: episode_ends must be strictly increasing and positive")
    n = int(episode_ends[-1])
    for key, arr in data.items():
        if arr.shape[0] != n:
            raise DpbenchError(
                f"{where}: array '{key}' has {arr.shape[0]} steps but the episodes end at {n}: mismatched lengths"
            )
        if arr.dtype.kind == "f" and arr.ndim < 4 and not np.all(np.isfinite(arr)):
            bad = int(np.argwhere(~np.isfinite(arr.reshape(n, -1)))[0, 0])
            raise DpbenchError(f"{where}: array '{key}' has NaN or inf values (first at step {bad})")


# ---------------------------------------------------------------------------------------- zarr
def _check_chunks(where: str, key: str, stored: Any, required: bool) -> None:
    """zarr reads a chunk missing on disk as its fill value, silently: a half-finished copy or unzip trains on
    zeros. In the arrays a run reads (``required``: actions, episode ends and the observations the caller asked
    for) a gap raises DpbenchError: actions, positions and pixels are never a whole chunk of fill values. In
    the others (zarr 3 skips writing all-fill chunks: a contact count may be zero throughout) it is a warning."""
    have, total = stored.nchunks_initialized, stored.nchunks
    if have == total:
        return
    text = f"{where}: array '{key}' has {have} of its {total} chunks on disk (a half-finished copy or unzip?)"
    if required:
        raise DpbenchError(f"{text}; copy or unzip the dataset again")
    print(f"[dpbench] warning: {text}; the missing ones read as {stored.fill_value}", file=sys.stderr)


def load_zarr(path: str | os.PathLike, keys: Iterable[str] | None = None, source: str | None = None) -> EpisodeStore:
    """Read the Diffusion Policy zarr layout. ``keys`` limits which ``data/`` arrays are loaded."""
    import zarr

    path = Path(path)
    where = str(path)
    if not path.exists():
        raise DpbenchError(f"{where}: no such dataset (check the path, or omit --dataset to use the default)")
    try:
        root = zarr.open_group(str(path), mode="r")
        names = set(root["data"].array_keys()) if "data" in root else set()
        if "meta" not in root or "episode_ends" not in root["meta"]:
            raise DpbenchError(f"{where}: not a dpbench/Diffusion-Policy zarr: missing 'meta/episode_ends'")
        if not names:
            raise DpbenchError(f"{where}: not a dpbench/Diffusion-Policy zarr: missing 'data/' arrays")
        wanted = sorted(names if keys is None else set(keys) | {ACTION_KEY})
        missing = [k for k in wanted if k not in names]
        if missing:
            raise DpbenchError(f"{where}: missing array(s) {missing}; it has {sorted(names)}")
        _check_chunks(where, "meta/episode_ends", root["meta"]["episode_ends"], required=True)
        ends = np.asarray(root["meta"]["episode_ends"][:], dtype=np.int64)
        data = {}
        for k in wanted:
            stored = root["data"][k]
            _check_chunks(where, k, stored, required=k == ACTION_KEY or keys is not None)
            arr = stored[:]
            if k == "img" and arr.dtype != np.uint8:  # the original stores pixels as float 0-255
                arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
            data[k] = arr
    except DpbenchError:
        raise
    except Exception as exc:  # corrupt chunks, bad metadata, truncated files
        raise DpbenchError(f"{where}: could not read the zarr dataset ({type(exc).__name__}: {exc})") from None
    return EpisodeStore(data, ends, source=source or where, attrs={"path": where, "format": "zarr"})


# ---------------------------------------------------------------------------------------- hdf5
_DEMO = re.compile(r"^demo_(\d+)$")


def load_hdf5(path: str | os.PathLike, keys: Iterable[str] | None = None, source: str | None = None) -> EpisodeStore:
    """Read robomimic-layout HDF5: ``data/demo_i/actions`` and ``data/demo_i/obs/<key>``.

    The store's arrays are ``action`` plus one array per observation key.
    """
    import h5py

    path = Path(path)
    where = str(path)
    if not path.exists():
        raise DpbenchError(f"{where}: no such dataset (check the path)")
    try:
        with h5py.File(path, "r") as f:
            if "data" not in f:
                raise DpbenchError(f"{where}: not a robomimic hdf5: no 'data' group")
            demos = sorted((k for k in f["data"] if _DEMO.match(k)), key=lambda k: int(_DEMO.match(k).group(1)))
            if not demos:
                raise DpbenchError(f"{where}: the dataset is empty: no 'data/demo_i' groups")
            attrs: dict[str, Any] = {"path": where, "format": "hdf5"}
            if "env_args" in f["data"].attrs:
                raw = f["data"].attrs["env_args"]
                attrs["env_args"] = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
            if isinstance(f.get("mask"), h5py.Group):  # robomimic's filter keys (mh sets: better/okay/worse)
                attrs["masks"] = sorted(f["mask"].keys())
            first_obs = f["data"][demos[0]].get("obs")
            obs_names = set(first_obs.keys()) if first_obs is not None else set()
            wanted = sorted(obs_names if keys is None else set(keys) - {ACTION_KEY})
            missing = [k for k in wanted if k not in obs_names]
            if missing:
                raise DpbenchError(f"{where}: missing obs key(s) {missing}; the demos have {sorted(obs_names)}")
            chunks: dict[str, list[np.ndarray]] = {ACTION_KEY: [], **{k: [] for k in wanted}}
            ends, total = [], 0
            for name in demos:
                demo = f["data"][name]
                if "actions" not in demo:
                    raise DpbenchError(f"{where}: demo '{name}' has no 'actions'")
                actions = demo["actions"][:]
                if len(actions) == 0:
                    raise DpbenchError(f"{where}: demo '{name}' has no steps; delete it or collect it again")
                chunks[ACTION_KEY].append(actions)
                for k in wanted:
                    if k not in demo.get("obs", {}):
                        raise DpbenchError(f"{where}: demo '{name}' has no obs '{k}'")
                    obs = demo["obs"][k][:]
                    if len(obs) != len(actions):
                        raise DpbenchError(
                            f"{where}: demo '{name}': obs '{k}' has {len(obs)} steps but actions has {len(actions)}"
                        )
                    chunks[k].append(obs)
                total += len(actions)
                ends.append(total)
            data = {k: np.concatenate(v) for k, v in chunks.items()}
    except DpbenchError:
        raise
    except Exception as exc:
        raise DpbenchError(f"{where}: could not read the hdf5 dataset ({type(exc).__name__}: {exc})") from None
    return EpisodeStore(data, np.array(ends), source=source or where, attrs=attrs)


def write_hdf5(store: EpisodeStore, path: str | os.PathLike, env_args: dict[str, Any] | None = None) -> Path:
    """Write robomimic-layout HDF5 atomically (temp file, then rename)."""
    import h5py

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with h5py.File(tmp, "w") as f:
        grp = f.create_group("data")
        grp.attrs["total"] = store.n_steps
        grp.attrs["env_args"] = json.dumps(env_args or store.attrs.get("env_args", {}))
        for i in range(store.n_episodes):
            ep = store.episode(i)
            demo = grp.create_group(f"demo_{i}")
            demo.attrs["num_samples"] = len(ep[ACTION_KEY])
            demo.create_dataset("actions", data=ep[ACTION_KEY])
            obs = demo.create_group("obs")
            for k, v in ep.items():
                if k == STATES_KEY:  # robomimic keeps simulator states beside the actions, not in obs
                    demo.create_dataset(k, data=v)
                elif k != ACTION_KEY:
                    obs.create_dataset(k, data=v, compression="gzip" if v.ndim >= 3 else None)
    os.replace(tmp, path)
    return path


def load_episodes(
    path: str | os.PathLike, keys: Iterable[str] | None = None, source: str | None = None
) -> EpisodeStore:
    """Load a zarr directory or an hdf5 file, chosen by what the path is."""
    p = Path(path)
    if not p.exists():
        raise DpbenchError(f"{p}: no such dataset (check the path)")
    if p.is_dir() or p.suffix.lower() == ".zarr":
        return load_zarr(p, keys, source)
    if p.suffix.lower() in (".hdf5", ".h5"):
        return load_hdf5(p, keys, source)
    raise DpbenchError(f"{p}: unknown dataset format; expected a .zarr directory or an .hdf5 file")
