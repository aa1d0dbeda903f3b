"""``lstm_gmm``: robomimic's BC-RNN with a Gaussian-mixture action head.

A 2-layer LSTM reads the observation sequence (training sequences of length 10) and, at every
step, outputs a 5-mode GMM over the action (means squashed by tanh into the normalized action box, softplus std +
1e-4, as robomimic's GMMActorNetwork). Training maximizes the actions'
log-likelihood. At evaluation the policy is called every step with the newest observation; the
LSTM state is carried between calls and, as in robomimic's rollouts, restarted every
``rnn_horizon`` steps (set ``rnn_horizon=0`` to carry it through the whole episode). Actions are
"low-noise" samples: a mode drawn from the mixture weights, then that mode's mean.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import distributions as D
from torch import nn
from torch.nn import functional as F

from dpbench.config import PolicyConfig
from dpbench.policy import Policy
from dpbench.presets import SMOKE_TRAIN, budget
from dpbench.spec import PolicySpec


@dataclasses.dataclass
class LSTMGMMConfig(PolicyConfig):
    """``lstm_gmm``'s settings: the LSTM, the Gaussian-mixture head and the rollout's state resets
    (robomimic's BC-RNN-GMM values)."""

    n_obs_steps: int = 10  # the training sequence length (robomimic's seq_length: 10)
    horizon: int = 10  # one action per observation step (aligned)
    n_action_steps: int = 1  # T_a: one action per step
    hidden_dim: int = 400  # LSTM hidden size (robomimic: 400 low-dim, 1000 image)
    num_layers: int = 2  # LSTM layers (robomimic: 2)
    num_modes: int = 5  # Gaussian mixture components (robomimic: 5)
    min_std: float = 1e-4  # floor on each component's std, in normalized action units (robomimic: 1e-4)
    rnn_horizon: int = 10  # rollout steps between resets of the LSTM state (robomimic's rnn horizon: 10)


class LSTMGMMPolicy(Policy):
    """``lstm_gmm``: robomimic's BC-RNN-GMM (an LSTM with its GMMActorNetwork head). Training maximizes the
    log-likelihood of the actions (B, T_o, D_a) of whole sequences; at rollout each call reads the newest
    observation, carries the LSTM state (restarted every ``rnn_horizon`` calls) and returns (B, 1, D_a)."""

    name = "lstm_gmm"
    positive_fields = ("hidden_dim", "num_layers", "num_modes", "rnn_horizon")
    Config = LSTMGMMConfig
    window_rule = "aligned"
    default_action_mode = "delta"  # the paper trains its baselines in robomimic's delta actions
    presets = {
        # Chi et al.'s robomimic workspace: robomimic's BC-RNN-GMM defaults (Adam, betas (0.9, 0.999), lr 1e-4,
        # constant, no weight decay, no EMA) at their dataloader's batch of 256.
        "paper": (
            {},
            budget(
                200_000,
                first_eval=0,
                batch_size=256,
                lr=1e-4,
                betas=(0.9, 0.999),
                warmup_steps=0,
                lr_schedule="constant",
                weight_decay=0.0,
                ema=False,
            ),
        ),
        # 15k steps: the knee of its curve on human Push-T (benchmarks/knees.py, results/knees/), and the
        # robomimic floor every policy trains at least (presets.MIN_TRAIN_WINDOWS).
        "quick": (
            {},
            budget(15_000, batch_size=64, lr=1e-3, betas=(0.9, 0.999), warmup_steps=200, weight_decay=0.0, ema=False),
        ),
        "smoke": (dict(hidden_dim=16, num_layers=1, num_modes=2, n_obs_steps=4, horizon=4, rnn_horizon=4), SMOKE_TRAIN),
    }

    def __init__(self, spec: PolicySpec, config: LSTMGMMConfig) -> None:
        super().__init__(spec, config)
        self.lstm = nn.LSTM(self.obs_feature_dim, config.hidden_dim, config.num_layers, batch_first=True)
        k, d = config.num_modes, spec.action_dim
        self.head = nn.Linear(config.hidden_dim, k * (2 * d + 1))
        self._state: tuple[torch.Tensor, torch.Tensor] | None = None
        self._steps = 0

    def _mixture(self, h: torch.Tensor) -> D.MixtureSameFamily:
        k, d = self.config.num_modes, self.spec.action_dim
        out = self.head(h)
        means = torch.tanh(out[..., : k * d].unflatten(-1, (k, d)))  # robomimic squashes the means into the [-1, 1] box
        stds = F.softplus(out[..., k * d : 2 * k * d].unflatten(-1, (k, d))) + self.config.min_std
        logits = out[..., 2 * k * d :]
        return D.MixtureSameFamily(D.Categorical(logits=logits), D.Independent(D.Normal(means, stds), 1))

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        h, _ = self.lstm(self.obs_features(batch))
        actions = self.action_normalizer.normalize(batch["action"].float())
        return -self._mixture(h).log_prob(actions).mean()

    def sequence_padding(self) -> tuple[int, int]:
        """Training sequences lie inside their episode (robomimic's and the original's: horizon 10 with
        n_obs_steps 1, so nothing is padded); a rollout's LSTM state also starts at the episode's start."""
        return 0, 0

    def reset_state(self) -> None:
        """Drop the LSTM state and the call count (an episode starts)."""
        self._state, self._steps = None, 0

    @property
    def obs_steps_read(self) -> int:
        """1: each call reads only the newest observation; the history lives in the LSTM state."""
        return 1  # only the newest observation is read; the history lives in the LSTM state

    @property
    def chunk_start(self) -> int:
        """0: ``predict_chunk`` returns only the current step's action, (B, 1, D_a)."""
        return 0  # predict_chunk returns only the current step's action

    @torch.inference_mode()
    def predict_chunk(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.config.rnn_horizon and self._steps % self.config.rnn_horizon == 0:
            self._state = None
        # Only the newest observation is read (encoded once); the history lives in the LSTM state.
        feats = self.obs_features({k: v[:, -1:] for k, v in obs.items()})
        h, self._state = self.lstm(feats, self._state)
        self._steps += 1
        mix = self._mixture(h[:, -1])
        probs = mix.mixture_distribution.probs
        mode = self.sample_index(probs).squeeze(-1)
        means = mix.component_distribution.base_dist.loc
        action = means[torch.arange(len(mode), device=self.device), mode]
        return self.action_normalizer.unnormalize(action)[:, None, :]
