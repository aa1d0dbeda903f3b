"""``bet``: Behavior Transformer (Shafiullah et al., 2022).

Actions are split into a discrete bin (k-means over the normalized training actions, 24 bins) and
a continuous residual offset. A small causal GPT over the observation history predicts, at every
step, the bin logits and one offset per bin. Loss: focal loss on the bins plus the offset MSE of
the demonstrated bin, weighted by 1000 as in the paper. Sampling draws a bin from the softmax and
adds that bin's offset to its centre.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from dpbench.config import PolicyConfig
from dpbench.policy import Policy, linear_weights_decay
from dpbench.presets import SMOKE_TRAIN, budget
from dpbench.spec import PolicySpec


@dataclasses.dataclass
class BETConfig(PolicyConfig):
    """``bet``'s settings: the GPT's context and size, the k-means action bins and the loss weights
    (the original's Push-T BET values)."""

    n_obs_steps: int = 3  # T_o: the GPT's context window (the original's Push-T BET: 3)
    horizon: int = 3  # aligned with the observation window; the last step's action is executed
    n_action_steps: int = 1  # T_a: one action per call
    n_bins: int = 24  # k-means action bins (the original's Push-T: 24)
    n_layer: int = 4  # GPT layers (the original: 4)
    n_head: int = 4  # attention heads (the original: 4)
    n_emb: int = 72  # GPT embedding size (the original: 72)
    dropout: float = 0.1  # GPT dropout (the original: 0.1)
    focal_gamma: float = 2.0  # focal-loss gamma of the bin classifier (the original: 2.0)
    offset_loss_weight: float = 1000.0  # weight of the residual-offset MSE beside the bin loss (the original: 1000)
    kmeans_iters: int = 50  # k-means iterations when fitting the bins (the original: 50)


def kmeans(x: torch.Tensor, k: int, iters: int, seed: int = 0) -> torch.Tensor:
    """Lloyd's k-means with a seeded random init; empty clusters are re-seeded from the data."""
    g = torch.Generator().manual_seed(seed)
    centers = x[torch.randperm(len(x), generator=g)[:k]].clone()
    for _ in range(iters):
        assign = torch.cdist(x, centers).argmin(dim=1)
        for j in range(k):
            members = x[assign == j]
            centers[j] = members.mean(0) if len(members) else x[torch.randint(len(x), (1,), generator=g)][0]
    return centers


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float) -> torch.Tensor:
    """Focal loss (Lin et al., 2017), as BET's bin classifier uses it: logits (..., K) against class ids ``target``
    (...), mean of -(1 - p_t)^gamma log p_t over the elements (``gamma=0``: cross-entropy)."""
    logp = F.log_softmax(logits, dim=-1).gather(-1, target[..., None]).squeeze(-1)
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


class BETPolicy(Policy):
    """``bet``: Behavior Transformer (Shafiullah et al., 2022). A causal GPT over the T_o observation steps predicts
    per step the bin logits (B, T_o, K) and one offset per bin (B, T_o, K, D_a); the action is a bin drawn from the
    softmax plus its offset, (B, 1, D_a) for the newest step. See the module docstring."""

    name = "bet"
    positive_fields = ("n_bins", "n_layer", "n_head", "n_emb")  # (0 k-means iterations keeps the first centres)
    Config = BETConfig
    window_rule = "aligned"
    default_action_mode = "delta"  # the paper trains its baselines in robomimic's delta actions
    presets = {
        # The original's BET workspace: minGPT's AdamW (betas (0.9, 0.95), decay 0.1 on Linear weights only),
        # gradient norm clipped to 1, a constant lr (it builds no scheduler) and no EMA.
        "paper": (
            {},
            budget(
                100_000,
                first_eval=0,
                batch_size=256,
                lr=1e-4,
                betas=(0.9, 0.95),
                weight_decay=0.1,
                grad_clip=1.0,
                warmup_steps=0,
                lr_schedule="constant",
                ema=False,
            ),
        ),
        # 30k steps: the knee of its curve on human Push-T (benchmarks/knees.py, results/knees/).
        "quick": (
            {},
            budget(
                30_000,
                batch_size=64,
                lr=1e-3,
                betas=(0.9, 0.95),
                weight_decay=0.1,
                grad_clip=1.0,
                warmup_steps=200,
                ema=False,
            ),
        ),
        "smoke": (dict(n_bins=4, n_layer=1, n_head=2, n_emb=16, kmeans_iters=5), SMOKE_TRAIN),
    }

    def __init__(self, spec: PolicySpec, config: BETConfig) -> None:
        super().__init__(spec, config)
        d, k = spec.action_dim, config.n_bins
        self.register_buffer("bin_centers", torch.zeros(k, d))
        self.obs_emb = nn.Linear(self.obs_feature_dim, config.n_emb)
        self.pos_emb = nn.Parameter(torch.zeros(1, config.n_obs_steps, config.n_emb))
        layer = nn.TransformerEncoderLayer(
            config.n_emb,
            config.n_head,
            4 * config.n_emb,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.gpt = nn.TransformerEncoder(layer, config.n_layer, enable_nested_tensor=False)
        self.ln_f = nn.LayerNorm(config.n_emb)
        self.head = nn.Linear(config.n_emb, k * (1 + d))
        self.register_buffer(
            "causal_mask",
            torch.triu(torch.ones(config.n_obs_steps, config.n_obs_steps, dtype=torch.bool), 1),
            persistent=False,
        )
        nn.init.normal_(self.pos_emb, std=0.02)

    def param_groups(self, weight_decay: float) -> list[dict]:
        return linear_weights_decay(self, weight_decay)

    def fit_statistics(self, arrays: dict[str, np.ndarray]) -> None:
        """The base normalizers, then the action bins: k-means (``n_bins`` centres, ``kmeans_iters`` Lloyd iterations,
        seed 0) over the normalized training actions ``arrays['action']`` (N, D_a), stored in the ``bin_centers``
        buffer (K, D_a)."""
        super().fit_statistics(arrays)
        actions = self.action_normalizer.normalize(torch.as_tensor(arrays["action"], dtype=torch.float32))
        self.bin_centers.copy_(kmeans(actions, self.config.n_bins, self.config.kmeans_iters))

    def _heads(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Bin logits (B, T, K) and offsets (B, T, K, D) for every observation step."""
        x = self.obs_emb(self.obs_features(obs)) + self.pos_emb
        h = self.ln_f(self.gpt(x, mask=self.causal_mask, is_causal=True))
        out = self.head(h)
        k = self.config.n_bins
        return out[..., :k], out[..., k:].unflatten(-1, (k, self.spec.action_dim))

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        actions = self.action_normalizer.normalize(batch["action"].float())
        bins = torch.cdist(actions.flatten(0, 1), self.bin_centers).argmin(-1).view(actions.shape[:2])
        logits, offsets = self._heads(batch)
        chosen = offsets.gather(2, bins[..., None, None].expand(-1, -1, 1, actions.shape[-1])).squeeze(2)
        offset_loss = F.mse_loss(chosen, actions - self.bin_centers[bins])
        return focal_loss(logits, bins, self.config.focal_gamma) + self.config.offset_loss_weight * offset_loss

    @property
    def chunk_start(self) -> int:
        """0: ``predict_chunk`` returns only the current step's action, (B, 1, D_a)."""
        return 0  # predict_chunk returns only the current step's action

    @torch.inference_mode()
    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        logits, offsets = self._heads(obs)
        logits, offsets = logits[:, -1], offsets[:, -1]
        b = self.sample_index(torch.softmax(logits, -1)).squeeze(-1)
        rows = torch.arange(len(b), device=self.device)
        action = self.bin_centers[b] + offsets[rows, b]
        return self.action_normalizer.unnormalize(action)[:, None, :]
