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


def window_indices(
    episode_ends: np.ndarray, episodes: np.ndarray, horizon: int, pad_before: int, pad_after: int
) -> np.ndarray:
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


def split_episodes(
    n_episodes: int, val_ratio: float, seed: int, max_train_episodes: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) episode ids, both sorted: the original Diffusion Policy split.

    ``round(n_episodes * val_ratio)`` episodes (at least 1 when ``val_ratio > 0``, and at least one
    left to train on) are drawn for validation with ``default_rng(seed).choice``; if more than
    ``max_train_episodes`` remain, that many are kept, drawn with a fresh ``default_rng(seed)``.
    This is ``get_val_mask`` then ``downsample_mask`` in the original ``common/sampler.py``; its
    configs use ``seed=42`` whatever the training seed, so every seed trains on the same episodes.
    """
    if n_episodes < 2 and val_ratio > 0:
        raise DpbenchError(
            f"a dataset of {n_episodes} episode(s) cannot be split into train and validation; set train.val_ratio=0"
        )
    val_mask = np.zeros(n_episodes, dtype=bool)
    if val_ratio > 0:
        n_val = min(max(1, round(n_episodes * val_ratio)), n_episodes - 1)
        val_mask[np.random.default_rng(seed).choice(n_episodes, size=n_val, replace=False)] = True
    train = np.nonzero(~val_mask)[0]
    if max_train_episodes is not None and len(train) > max_train_episodes:
        keep = np.random.default_rng(seed).choice(len(train), size=int(max_train_episodes), replace=False)
        train = np.sort(train[keep])
    return train, np.nonzero(val_mask)[0]


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
        pad_before: int,
        pad_after: int,
    ) -> SequenceSampler:
        """Windows of ``horizon`` steps over ``episodes``, reaching at most ``pad_before`` steps before an
        episode and ``pad_after`` past it (``Policy.sequence_padding``: T_o - 1 and T_a - 1 by default)."""
        idx = window_indices(store.episode_ends, episodes, horizon, pad_before, pad_after)
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
        """``batch_size`` windows drawn uniformly with replacement by ``rng``: observation keys (B, T_o, ...), 'action'
        (B, horizon, D_a)."""
        return self.batch(rng.integers(0, len(self.indices), size=batch_size))

    def epoch(self, batch_size: int, rng: np.random.Generator):
        """Yield shuffled batches covering every window once (the last partial batch is dropped)."""
        order = rng.permutation(len(self.indices))
        for i in range(0, len(order) - batch_size + 1, batch_size):
            yield self.batch(order[i : i + batch_size])
