"""Training windows over episodes, with the paper's padding semantics.

A window is ``horizon`` consecutive steps. Windows may start up to ``pad_before`` steps before an
episode and end up to ``pad_after`` steps after it; out-of-episode steps repeat the first or the
last step (edge padding). With ``pad_before = n_obs_steps - 1`` and ``pad_after = n_action_steps - 1``
this is the original Diffusion Policy ``SequenceSampler``.

Windows are precomputed as an index matrix, so a batch is one fancy-indexing gather per key:
no DataLoader workers, nothing for the trainer to wait on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dpbench.data.episodes import EpisodeStore
from dpbench.errors import DpbenchError


def window_indices(episode_ends: np.ndarray, episodes: np.ndarray, horizon: int, pad_before: int, pad_after: int) -> np.ndarray:
    """(n_windows, horizon) global step indices, clamped to each window's episode."""
    starts = np.concatenate([[0], episode_ends[:-1]])
    rows = []
    offsets = np.arange(horizon)
    for ep in episodes:
        s, e = int(starts[ep]), int(episode_ends[ep])
        length = e - s
        first = np.arange(-pad_before, length - horizon + pad_after + 1)
        if len(first) == 0:
            continue
        local = np.clip(first[:, None] + offsets[None, :], 0, length - 1)
        rows.append(local + s)
    if not rows:
        return np.zeros((0, horizon), dtype=np.int64)
    return np.concatenate(rows).astype(np.int64)


def split_episodes(n_episodes: int, val_ratio: float, seed: int, max_train_episodes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Split episode ids into train/validation by episode, then cap the train set."""
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_episodes)
    n_val = int(round(n_episodes * val_ratio))
    if n_val >= n_episodes:
        n_val = n_episodes - 1
    val, train = np.sort(order[:n_val]), order[n_val:]
    if max_train_episodes is not None and len(train) > max_train_episodes:
        train = train[:max_train_episodes]
    return np.sort(train), val


@dataclass
class SequenceSampler:
    """Random batches of windows from a set of arrays (keyed like the task's obs plus 'action')."""

    arrays: dict[str, np.ndarray]
    indices: np.ndarray  # (n_windows, horizon)
    n_obs_steps: int

    @classmethod
    def build(
        cls,
        store: EpisodeStore,
        arrays: dict[str, np.ndarray],
        episodes: np.ndarray,
        horizon: int,
        n_obs_steps: int,
        n_action_steps: int,
    ) -> "SequenceSampler":
        idx = window_indices(store.episode_ends, episodes, horizon, n_obs_steps - 1, n_action_steps - 1)
        if len(idx) == 0:
            raise DpbenchError(f"{store.source}: no training windows (episodes too short for horizon {horizon}?)")
        return cls(arrays, idx, n_obs_steps)

    def __len__(self) -> int:
        return len(self.indices)

    def batch(self, window_ids: np.ndarray) -> dict[str, np.ndarray]:
        """Observation keys get the first n_obs_steps of the window; 'action' the whole horizon."""
        idx = self.indices[window_ids]
        out = {}
        for key, arr in self.arrays.items():
            out[key] = arr[idx] if key == "action" else arr[idx[:, : self.n_obs_steps]]
        return out

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self.batch(rng.integers(0, len(self.indices), size=batch_size))

    def epoch(self, batch_size: int, rng: np.random.Generator):
        """Yield shuffled batches covering every window once (the last partial batch is dropped)."""
        order = rng.permutation(len(self.indices))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield self.batch(order[i : i + batch_size])
