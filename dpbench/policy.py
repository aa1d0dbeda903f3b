"""The policy contract: the ``Policy`` base class that every policy (Diffusion Policy and each
baseline) subclasses, and the one owner of the rollout window and the action chunk.

A policy is a torch module with a typed config dataclass (``dpbench.config.PolicyConfig``), built
from a ``PolicySpec``. The trainer, the evaluator and the results code only talk to this
interface, so adding a policy is one file (named as ``module:Class``, or registered as an entry
point: ``dpbench.policies``).

Contract (the paper's, and the original's ``predict_action``): observations arrive as a dict of
``(B, T_o, *shape)`` tensors in env units; a policy returns its predicted chunk
``(B, T_p, D_a)`` in env units (``predict_chunk``), and the base class executes ``T_a`` of it from
the current step on (``predict_action``: ``(B, T_a, D_a)``). At rollout time ``select_action``
(lerobot's design) takes one step's observation, keeps the observation window and the queue of
actions still to execute, and calls ``predict_action`` only when the queue is empty; ``reset``
clears both at an episode start.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from dpbench.config import PolicyConfig, TrainConfig
from dpbench.contract import check_actions, check_tensor, policy_label
from dpbench.data.normalization import RANGE, Normalization
from dpbench.data.normalizer import RangeNormalizer
from dpbench.errors import DpbenchError
from dpbench.presets import SMOKE_TRAIN
from dpbench.spec import PolicySpec
from dpbench.vision import ImageEncoders, VisionConfig

__all__ = [
    "SMOKE_TRAIN",
    "Policy",
    "PolicyConfig",
    "PolicySpec",
    "TrainConfig",
    "check_actions",
    "linear_weights_decay",
]


class Policy(nn.Module):
    """Base class. Subclasses set ``name``, ``Config`` and ``presets``, and implement ``compute_loss``
    and ``predict_chunk`` (recurrent policies also ``reset_state``)."""

    name: ClassVar[str] = ""
    Config: ClassVar[type[PolicyConfig]] = PolicyConfig
    # preset name -> (policy config overrides, train config overrides)
    presets: ClassVar[dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {}
    # How the windows must relate (checked by ``check_config``, at construction and before any data loads):
    #   "chunk":   the predicted window holds T_a actions from the last observed step on:
    #              horizon >= n_obs_steps - 1 + n_action_steps (Diffusion Policy, BC)
    #   "single":  one action, at the last observed step: n_action_steps == 1, horizon >= n_obs_steps (IBC)
    #   "aligned": one action per observation step: horizon == n_obs_steps, n_action_steps == 1 (LSTM-GMM, BET)
    window_rule: ClassVar[str] = "chunk"
    # Per task (Task.name), (policy, train) overrides applied over every preset but ``smoke``: the
    # original's task-specific configs (e.g. DP-T on Push-T: attention dropout 0.01, weight decay 0.1).
    task_overrides: ClassVar[dict[str, tuple[dict[str, Any], dict[str, Any]]]] = {}
    # Config fields that are sizes or counts, each >= 1 (an int, or every int of a tuple such as hidden widths):
    # ``check_config`` refuses a 0 that would build a zero-width layer and train on nothing, or crash later.
    positive_fields: ClassVar[tuple[str, ...]] = ()
    # robomimic tasks: the action space a cell trains in when no --dataset is given. "abs": absolute end-effector
    # targets, as the paper's Diffusion Policy; "delta": robomimic's delta actions, as the paper's baselines
    # (LSTM-GMM, IBC, BET; docs/baselines_vs_original.md). Push-T has one action space.
    default_action_mode: ClassVar[str] = "abs"

    @classmethod
    def check_config(cls, config: PolicyConfig) -> None:
        """Refuse a config this policy cannot run with; called at construction and by the runner before
        any data is loaded. Raises DpbenchError. The base checks the windows against ``window_rule``,
        naming the fields and the rule; policies with more fields to validate extend it (calling
        ``super().check_config``)."""
        if cls.default_action_mode not in ("abs", "delta"):
            raise DpbenchError(
                f"policy '{cls.name}': default_action_mode = {cls.default_action_mode!r}; it must be 'abs' or 'delta'"
            )
        to, tp, ta = config.n_obs_steps, config.horizon, config.n_action_steps
        fields = f"n_obs_steps={to}, horizon={tp}, n_action_steps={ta}"
        if min(to, tp, ta) < 1:
            raise DpbenchError(f"policy '{cls.name}': {fields}; every window must be at least 1")
        rules = {
            "chunk": (
                tp >= to - 1 + ta,
                "horizon >= n_obs_steps - 1 + n_action_steps (the executed actions start at the last observed step)",
            ),
            "single": (
                ta == 1 and tp >= to,
                "n_action_steps == 1 and horizon >= n_obs_steps (one action, at the last observed step)",
            ),
            "aligned": (
                ta == 1 and tp == to,
                "horizon == n_obs_steps and n_action_steps == 1 (one action per observation step)",
            ),
        }
        ok, rule = rules[cls.window_rule]
        if not ok:
            raise DpbenchError(f"policy '{cls.name}': {fields} breaks its window rule: {rule}")
        small = [
            f"{name}={','.join(map(str, v)) if isinstance(v, tuple) else v}"
            for name in cls.positive_fields
            for v in [getattr(config, name)]
            if any(x < 1 for x in (v if isinstance(v, tuple) else (v,)))
        ]
        if small:
            raise DpbenchError(f"policy '{cls.name}': {', '.join(small)}; a size or count must be at least 1")
        vision = config.vision
        if vision is not None and len(vision.widths) != len(vision.blocks):  # the encoder zips them: one stage each
            raise DpbenchError(
                f"policy '{cls.name}': vision.widths={','.join(map(str, vision.widths))} and vision.blocks="
                f"{','.join(map(str, vision.blocks))} must give one block count per stage width (the same length)"
            )

    def __init__(self, spec: PolicySpec, config: PolicyConfig) -> None:
        super().__init__()
        self.check_config(config)
        self.spec = spec
        self.config = config
        self.obs_normalizers = nn.ModuleDict(
            {k: RangeNormalizer(int(np.prod(spec.obs_shapes[k]))) for k in spec.lowdim_keys}
        )
        self.action_normalizer = RangeNormalizer(spec.action_dim)
        self.obs_feature_dim = sum(self.obs_normalizers[k].scale.numel() for k in spec.lowdim_keys)
        self.image_encoder: ImageEncoders | None = None
        if spec.image_keys:  # every policy gets the same visual encoder, trained end to end
            if config.vision is None:
                config.vision = VisionConfig()
            self.image_encoder = ImageEncoders({k: spec.obs_shapes[k] for k in spec.image_keys}, config.vision)
            self.obs_feature_dim += self.image_encoder.out_dim
        self.normalization: Normalization = RANGE  # how fit_statistics fits the normalizers (train.normalizer)
        # Evaluation-time sampling noise: one generator per batch row (see ``seed``).
        self.sampling_seed = 0
        self.episode_seeds: list[int] | None = None
        self.generators: list[torch.Generator] | None = None
        # The rollout's observation window and the actions still to execute (``select_action``).
        self._obs_window: dict[str, deque[torch.Tensor]] = {}
        self._action_queue: deque[torch.Tensor] = deque()

    # --- windows the trainer and evaluator need
    @property
    def n_obs_steps(self) -> int:
        """T_o: observation steps the policy is conditioned on."""
        return self.config.n_obs_steps

    @property
    def horizon(self) -> int:
        """T_p: steps in the predicted action window (also the training window)."""
        return self.config.horizon

    @property
    def n_action_steps(self) -> int:
        """T_a: actions executed per plan, before the policy plans again."""
        return self.config.n_action_steps

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """The optimizer's parameter groups: by default one, with ``weight_decay`` on every parameter
        (the original's UNet, IBC and robomimic recipes). Transformers override it with
        ``linear_weights_decay`` (minGPT's rule, which the original's BET and DP-T use)."""
        return [{"params": [p for p in self.parameters() if p.requires_grad], "weight_decay": weight_decay}]

    def sequence_padding(self) -> tuple[int, int]:
        """(before, after): how many steps a training window may reach before an episode's start and
        past its end (edge-padded). Default: T_o - 1 and T_a - 1, the original's ``pad_before`` and
        ``pad_after`` for chunk policies."""
        return self.n_obs_steps - 1, self.n_action_steps - 1

    def fit_statistics(self, arrays: dict[str, np.ndarray]) -> None:
        """Data-dependent setup from the training arrays, before training: min/max normalizers here, by the rule
        in ``self.normalization`` (``dpbench.data.normalization``; the runner sets it from ``train.normalizer``;
        images are scaled inside the model); policies add their own (e.g. BET's action bins)."""
        rule = self.normalization
        if rule.obs_max_abs and self.obs_normalizers:  # one scale for every low-dim dimension, as the original's
            max_abs = max(float(np.abs(arrays[k]).max()) for k in self.obs_normalizers)
            for norm in self.obs_normalizers.values():
                norm.set_scale(1.0 / max_abs if max_abs > 0 else 1.0)
        else:
            for key, norm in self.obs_normalizers.items():
                norm.fit(arrays[key].reshape(len(arrays[key]), -1))
        self.action_normalizer.fit(arrays["action"], dims=rule.action_range_dims)
        if rule.action_range_dims is not None:  # unscaled dimensions: diffusion and flow sampling clip to [-1, 1]
            reach = np.abs(np.asarray(arrays["action"]).reshape(-1, self.spec.action_dim)).max(0)
            wide = [d for d in range(self.spec.action_dim) if d not in rule.action_range_dims and reach[d] > 1 + 1e-6]
            if wide:
                print(
                    f"[dpbench] warning: train.normalizer=original leaves action dimension(s) {wide} unscaled, and the "
                    f"data reach |a| = {reach[wide].max():.3g} there; diffusion and flow sampling clip normalized "
                    "actions to [-1, 1] (as the original's does), so those values cannot be produced; use "
                    "train.normalizer=range",
                    file=sys.stderr,
                )

    def normalize_obs(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``obs`` with each low-dim key (B, T, *shape) flattened to (B, T, D) float and mapped to [-1, 1] by its
        fitted normalizer; image keys pass through unchanged (uint8, scaled inside the encoder)."""
        out = dict(obs)
        for key, norm in self.obs_normalizers.items():
            x = obs[key]
            out[key] = norm.normalize(x.reshape(*x.shape[:2], -1).float())
        return out

    def obs_features(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, T_o, obs_feature_dim): image features (if any), then the normalized low-dim
        observations, concatenated per step."""
        nobs = self.normalize_obs(obs)
        parts = [nobs[k][:, : self.n_obs_steps] for k in self.spec.lowdim_keys]
        if self.image_encoder is not None:
            parts.insert(0, self.image_encoder({k: obs[k][:, : self.n_obs_steps] for k in self.spec.image_keys}))
        return torch.cat(parts, dim=-1)

    @property
    def device(self) -> torch.device:
        """The device of the policy's buffers, where its inputs must be."""
        return self.action_normalizer.scale.device

    def seed(self, seed: int, episode_seeds: Sequence[int] | None = None) -> None:
        """Seed the sampling noise. Row i of every batch draws from its own generator, seeded from
        ``(seed, episode_seeds[i])`` (default: ``(seed, i)``), so an episode's noise depends only on
        the sampling seed and its own test seed, never on which episodes share its batch."""
        self.sampling_seed = int(seed)
        self.episode_seeds = None if episode_seeds is None else [int(s) for s in episode_seeds]
        self.generators = None

    def row_generators(self, batch: int) -> list[torch.Generator]:
        """The ``batch`` per-row generators (created at the first draw after ``seed``).

        Raises DpbenchError when ``seed`` named episodes for a different batch size."""
        if self.generators is None or len(self.generators) != batch:
            rows = self.episode_seeds if self.episode_seeds is not None else list(range(batch))
            if len(rows) != batch:
                raise DpbenchError(
                    f"policy '{self.name}' was seeded for {len(rows)} episodes but called with a batch of {batch}"
                )
            self.generators = [
                torch.Generator(device=self.device).manual_seed(
                    int(np.random.SeedSequence([self.sampling_seed, s]).generate_state(1, np.uint64)[0])
                )
                for s in rows
            ]
        return self.generators

    def randn(self, batch: int, *shape: int) -> torch.Tensor:
        """Standard normal noise (batch, *shape), row i from row i's generator."""
        return torch.stack([torch.randn(shape, generator=g, device=self.device) for g in self.row_generators(batch)])

    def rand(self, batch: int, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) noise (batch, *shape), row i from row i's generator."""
        return torch.stack([torch.rand(shape, generator=g, device=self.device) for g in self.row_generators(batch)])

    def sample_index(self, probs: torch.Tensor, n: int = 1) -> torch.Tensor:
        """``n`` category indices per row (with replacement) from probabilities (B, K): (B, n)."""
        gens = self.row_generators(probs.shape[0])
        return torch.stack([torch.multinomial(p, n, replacement=True, generator=g) for p, g in zip(probs, gens)])

    def initial_noise(self, batch: int) -> torch.Tensor:
        """Gaussian noise shaped like an action window (B, T_p, D_a), from the per-row generators."""
        return self.randn(batch, self.horizon, self.spec.action_dim)

    # --- the contract
    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Scalar training loss for a batch: obs keys (B, T_o, ...) and 'action' (B, T_p, D_a)."""
        raise DpbenchError(f"policy '{self.name}' does not implement compute_loss(batch) (the Policy contract)")

    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """The predicted action chunk (B, L, D_a) in env units for observations (B, obs_steps_read, ...)
        in env units. Row ``chunk_start`` holds the action for the newest observed step; the base
        class executes ``n_action_steps`` actions from there. Implement this (or, for a policy that
        plans exactly T_a actions itself, ``predict_action``)."""
        raise DpbenchError(f"policy '{self.name}' does not implement predict_chunk(obs) (the Policy contract)")

    @property
    def chunk_start(self) -> int:
        """Index, in ``predict_chunk``'s output, of the newest observed step's action: T_o - 1 for a
        chunk that starts at the oldest observed step (the original's ``start = To - 1``); policies
        that return only the current step's action set 0."""
        return self.n_obs_steps - 1

    @property
    def obs_steps_read(self) -> int:
        """Observation steps the policy reads per call at inference (the window ``select_action``
        keeps): T_o by default; a recurrent policy that carries its history in its state reads 1."""
        return self.n_obs_steps

    def predict_action(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Actions to execute (B, T_a, D_a) in env units: ``predict_chunk``'s T_a actions from the
        newest observed step on. Raises DpbenchError when the chunk is not a tensor or has the wrong
        shape; ``select_action`` also refuses NaN/inf actions (``check_actions``) before any reaches an env."""
        batch = next(iter(obs.values())).shape[0]
        chunk = self.predict_chunk(obs)
        check_tensor(self, chunk, "predict_chunk")
        start, ta = self.chunk_start, self.n_action_steps
        if (
            chunk.ndim != 3
            or chunk.shape[0] != batch
            or chunk.shape[2] != self.spec.action_dim
            or chunk.shape[1] < start + ta
        ):
            raise DpbenchError(
                f"policy {policy_label(self)} broke the contract: predict_chunk returned shape {tuple(chunk.shape)}, "
                f"expected (B, L, D_a) with B={batch}, D_a={self.spec.action_dim} and "
                f"L >= chunk_start + T_a = {start + ta}"
            )
        return chunk[:, start : start + ta]

    def select_action(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """One rollout step: this step's observations (B, *shape) in env units -> the action to execute
        now (B, D_a). Keeps the last ``obs_steps_read`` observations (at an episode's start the window
        is filled with copies of the first) and the actions still queued; plans a new chunk (one
        ``predict_action`` call) only when the queue is empty. ``reset`` clears both."""
        for key, value in obs.items():
            window = self._obs_window.setdefault(key, deque(maxlen=self.obs_steps_read))
            while len(window) < self.obs_steps_read - 1:  # a fresh episode: copies of its first observation
                window.append(value)
            window.append(value)
        if not self._action_queue:
            batch = {k: torch.stack(list(w), dim=1) for k, w in self._obs_window.items()}
            actions = check_actions(self, self.predict_action(batch), batch[next(iter(batch))].shape[0])
            self._action_queue.extend(actions.unbind(1))
        return self._action_queue.popleft()

    @property
    def plans_next(self) -> bool:
        """Whether the next ``select_action`` call plans a new chunk (its action queue is empty)."""
        return not self._action_queue

    def reset(self) -> None:
        """Start a new episode: clear the observation window, the action queue and any recurrent
        state (``reset_state``)."""
        self._obs_window.clear()
        self._action_queue.clear()
        self.reset_state()

    def reset_state(self) -> None:
        """Clear recurrent state at an episode start (stateless policies: nothing)."""


def linear_weights_decay(module: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """minGPT's ``configure_optimizers`` rule (the original's BET and DP-T ``get_optim_groups``): weight
    decay on the weights of Linear layers and attention projections only; biases, normalization
    weights, embeddings and free parameters (position embeddings) get none."""
    decay, no_decay = [], []
    for mod in module.modules():
        for name, param in mod.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            is_weight = name.endswith("weight")
            if is_weight and isinstance(mod, (nn.Linear, nn.MultiheadAttention)):
                decay.append(param)
            else:
                no_decay.append(param)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
