"""``bc``: behaviour cloning with an MLP from the observation window to the action chunk (MSE).

The simplest reference, and the reference for mode averaging: where demonstrations disagree
(push around the left or the right of the T), the MSE-optimal prediction is their mean.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.nn import functional as F

from dpbench.config import PolicyConfig
from dpbench.policy import Policy
from dpbench.presets import SMOKE_TRAIN, budget
from dpbench.spec import PolicySpec


@dataclasses.dataclass
class BCConfig(PolicyConfig):
    """``bc``'s settings: the MLP's hidden widths (ReLU) and dropout."""

    hidden_dims: tuple[int, ...] = (512, 512, 512)  # MLP hidden layer widths
    dropout: float = 0.0  # dropout after each hidden layer


def mlp(
    in_dim: int, hidden: tuple[int, ...], out_dim: int, dropout: float = 0.0, act: type[nn.Module] = nn.ReLU
) -> nn.Sequential:
    """An MLP ``(..., in_dim) -> (..., out_dim)``: per hidden width a Linear, ``act`` and (when ``dropout > 0``)
    Dropout, then a final Linear. Shared by ``bc`` and ``ibc``'s energy network."""
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(in_dim, h), act()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        in_dim = h
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


class BCPolicy(Policy):
    """``bc``: an MLP from the flattened observation features of the T_o steps (B, T_o * F) to the whole normalized
    chunk (B, T_p, D_a), trained with MSE. The executed T_a actions start at index T_o - 1."""

    name = "bc"
    positive_fields = ("hidden_dims",)
    Config = BCConfig
    presets = {
        "paper": ({}, budget(100_000, first_eval=0, batch_size=256, lr=1e-4)),
        # 8k steps: the knee of its curve on human Push-T (benchmarks/knees.py, results/knees/).
        "quick": (dict(hidden_dims=(256, 256, 256)), budget(8000, batch_size=64, lr=1e-3, warmup_steps=200)),
        "smoke": (dict(hidden_dims=(32,)), SMOKE_TRAIN),
    }

    def __init__(self, spec: PolicySpec, config: BCConfig) -> None:
        super().__init__(spec, config)
        out = config.horizon * spec.action_dim
        self.net = mlp(self.obs_feature_dim * config.n_obs_steps, tuple(config.hidden_dims), out, config.dropout)

    def _predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Normalized (B, T_p, D_a)."""
        feats = self.obs_features(obs).flatten(1)
        return self.net(feats).view(feats.shape[0], self.horizon, self.spec.action_dim)

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        target = self.action_normalizer.normalize(batch["action"].float())
        return F.mse_loss(self._predict_chunk(batch), target)

    @torch.inference_mode()
    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.action_normalizer.unnormalize(self._predict_chunk(obs))
