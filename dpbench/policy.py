"""The policy contract, its registry, and safe checkpoints.

Every policy (Diffusion Policy and each baseline) is a ``Policy``: a torch module with a typed
config dataclass, built from a ``PolicySpec``. The trainer, the evaluator and the results code
only ever talk to this interface, so adding a policy is one file and one registry entry.

Contract (the paper's): observations arrive as a dict of ``(B, n_obs_steps, *shape)`` tensors in
env units; ``predict_action`` returns ``(B, n_action_steps, action_dim)`` in env units.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import types
import typing
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from dpbench.data.normalizer import RangeNormalizer
from dpbench.errors import DpbenchError
from dpbench.tasks import PolicySpec
from dpbench.vision import IMAGE_TRAIN_PRESETS, VISION_PRESETS, ImageEncoders, VisionConfig

ENTRY_POINT_GROUP = "dpbench.policies"


@dataclasses.dataclass
class PolicyConfig:
    """Fields every policy config has: the observation/action windows."""

    n_obs_steps: int = 2  # T_o
    horizon: int = 16  # T_p, the predicted chunk (also the training window)
    n_action_steps: int = 8  # T_a, executed before replanning
    vision: VisionConfig | None = None  # the image encoder; set for image observations only


@dataclasses.dataclass
class TrainConfig:
    """The shared training loop's settings (one optimizer step = one batch)."""

    steps: int = 20000
    batch_size: int = 256
    lr: float = 1e-4
    weight_decay: float = 1e-6
    betas: tuple[float, float] = (0.95, 0.999)
    warmup_steps: int = 500
    lr_schedule: str = "cosine"  # "cosine" | "constant"
    ema: bool = True
    ema_power: float = 0.75
    ema_max_decay: float = 0.9999
    eval_every: int = 2000
    eval_after: int = 0  # first step at which periodic evaluation starts (the last step is always evaluated)
    eval_episodes: int = 50
    # After training, the checkpoint the max selects is scored on this many fresh test seeds
    # (Task.heldout_seed_start on), which no selection saw: the record's "heldout" (0: skip).
    heldout_episodes: int = 200
    checkpoint_every: int = 2000
    # The data protocol (the original's dataset configs): validation split and training subset are
    # drawn with ``split_seed``, the same for every training seed (dpbench.data.sampler.split_episodes).
    val_ratio: float = 0.02  # fraction of episodes held out (never trained on)
    split_seed: int = 42  # the original's dataset ``seed: 42``
    # "paper": the task's paper cap on training episodes (human Push-T: 90, Task.paper_max_train_episodes);
    # "all": every non-validation episode (`dpbench run --all-episodes`).
    train_episodes: str = "paper"
    max_train_episodes: int | None = None  # an explicit cap; overrides train_episodes when set
    grad_clip: float | None = None


# The smoke preset's training settings, shared by every policy: a few steps and a 2-episode
# evaluation, so a whole run takes seconds (tests).
SMOKE_TRAIN: dict[str, Any] = dict(
    steps=6, batch_size=8, warmup_steps=1, eval_every=3, checkpoint_every=3, eval_episodes=2, heldout_episodes=2
)


class Policy(nn.Module):
    """Base class. Subclasses set ``name`` and ``Config`` and implement the three methods."""

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

    @classmethod
    def check_config(cls, config: PolicyConfig) -> None:
        """Refuse a config this policy cannot run with; called at construction and by the runner before
        any data is loaded. Raises DpbenchError. The base checks the windows against ``window_rule``,
        naming the fields and the rule; policies with more fields to validate extend it (calling
        ``super().check_config``)."""
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
        # Evaluation-time sampling noise: one generator per batch row (see ``seed``).
        self.sampling_seed = 0
        self.episode_seeds: list[int] | None = None
        self.generators: list[torch.Generator] | None = None

    # --- windows the trainer and evaluator need
    @property
    def n_obs_steps(self) -> int:
        return self.config.n_obs_steps

    @property
    def horizon(self) -> int:
        return self.config.horizon

    @property
    def n_action_steps(self) -> int:
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
        """Data-dependent setup from the training arrays, before training: min/max normalizers here
        (images are scaled inside the model); policies add their own (e.g. BET's action bins)."""
        for key, norm in self.obs_normalizers.items():
            norm.fit(arrays[key].reshape(len(arrays[key]), -1))
        self.action_normalizer.fit(arrays["action"])

    def normalize_obs(self, obs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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

    def predict_action(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Actions (B, T_a, D_a) in env units for observations (B, T_o, ...) in env units."""
        raise DpbenchError(f"policy '{self.name}' does not implement predict_action(obs) (the Policy contract)")

    def reset(self) -> None:
        """Clear recurrent or queued state at an episode start (stateless policies: nothing)."""


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


# ------------------------------------------------------------------------------- registry
_BUILTIN: dict[str, str] = {
    "diffusion": "dpbench.diffusion.policy:DiffusionUnetPolicy",
    "diffusion_cnn": "dpbench.diffusion.policy:DiffusionUnetPolicy",
    "diffusion_transformer": "dpbench.diffusion.policy:DiffusionTransformerPolicy",
    "diffusion_flow": "dpbench.diffusion.flow:FlowMatchingPolicy",
    "bc": "dpbench.baselines.bc:BCPolicy",
    "lstm_gmm": "dpbench.baselines.lstm_gmm:LSTMGMMPolicy",
    "ibc": "dpbench.baselines.ibc:IBCPolicy",
    "bet": "dpbench.baselines.bet:BETPolicy",
}


def _load_ref(ref: str) -> type[Policy]:
    module, _, attr = ref.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise DpbenchError(f"cannot import policy '{ref}': {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Policy)):
        raise DpbenchError(f"'{ref}' is not a dpbench Policy subclass (see docs/adding_a_policy.md)")
    missing = [m for m in ("compute_loss", "predict_action") if getattr(cls, m) is getattr(Policy, m)]
    if missing:
        raise DpbenchError(
            f"policy '{cls.name or ref}' breaks the Policy contract: it does not implement {', '.join(missing)}"
        )
    if not cls.name or not cls.presets:
        raise DpbenchError(
            f"policy '{ref}' breaks the Policy contract: it needs a `name` and at least one preset in `presets`"
        )
    return cls


def available_policies() -> dict[str, str]:
    """name -> 'module:Class' for built-ins and installed entry points."""
    names = dict(_BUILTIN)
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        names.setdefault(ep.name, ep.value)
    return names


def get_policy_class(name: str) -> type[Policy]:
    """Resolve ``--policy``: a registered name, an entry point, or ``package.module:ClassName``."""
    if ":" in name:
        return _load_ref(name)
    names = available_policies()
    if name not in names:
        raise DpbenchError(f"unknown policy '{name}'; valid policies: {', '.join(sorted(names))}")
    return _load_ref(names[name])


# ------------------------------------------------------------------------------- configs
NONE_WORDS = ("none", "null")
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _nested_dataclass(tp: Any) -> type | None:
    """The dataclass a field holds (``VisionConfig`` for ``VisionConfig | None``), else None."""
    for t in (tp, *typing.get_args(tp)):
        if isinstance(t, type) and dataclasses.is_dataclass(t):
            return t
    return None


def parse_value(text: str, tp: Any) -> Any:
    """Parse a ``--set`` string by the config field's declared type: int, float, bool, str, tuples
    (``tuple[int, ...]`` and fixed-length ones, written ``a,b,c``) and optionals (``none``/``null``).
    Raises ValueError naming the expected type."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if type(None) in args and text.strip().lower() in NONE_WORDS:
            return None
        for option in (a for a in args if a is not type(None)):
            try:
                return parse_value(text, option)
            except ValueError:
                continue
        raise ValueError(f"expected {_type_name(tp)}, got {text!r}")
    if tp is bool:
        word = text.strip().lower()
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        raise ValueError(f"expected a boolean (true/false), got {text!r}")
    if tp in (int, float, str):
        try:
            return tp(text.strip()) if tp is not str else text
        except ValueError:
            raise ValueError(f"expected {tp.__name__}, got {text!r}") from None
    if origin is tuple:
        items = [v.strip() for v in text.replace("(", "").replace(")", "").split(",") if v.strip()]
        kinds = [args[0]] * len(items) if len(args) == 2 and args[1] is Ellipsis else list(args)
        if len(kinds) != len(items):
            raise ValueError(f"expected {len(kinds)} comma-separated values ({_type_name(tp)}), got {text!r}")
        return tuple(parse_value(v, k) for v, k in zip(items, kinds))
    raise ValueError(f"cannot set a field of type {_type_name(tp)} from the command line")


def apply_overrides(cfg: Any, overrides: dict[str, Any], where: str) -> Any:
    """Set config fields from ``{"field": value}`` (``"nested.field"`` reaches into a nested dataclass such
    as ``vision``). String values (``--set``) are parsed by the field's declared type; JSON lists become
    tuples and JSON objects fill a nested dataclass. Raises DpbenchError naming the field and its type."""
    hints = typing.get_type_hints(type(cfg))
    fields = {f.name for f in dataclasses.fields(cfg)}
    for key, value in overrides.items():
        head, dot, rest = key.partition(".")
        if head not in fields:
            raise DpbenchError(f"{where} has no field '{key}'; fields: {', '.join(sorted(fields))}")
        nested = _nested_dataclass(hints[head])
        if nested is not None:
            if dot:
                if getattr(cfg, head) is None:
                    hint = " (e.g. --obs image)" if head == "vision" else ""
                    raise DpbenchError(
                        f"'{key}': {head} settings apply only to image observations{hint}"
                        if head == "vision"
                        else f"'{key}': {where}.{head} is not set for this run"
                    )
                apply_overrides(getattr(cfg, head), {rest: value}, f"{where}.{head}")
            else:
                empty = value is None or (isinstance(value, str) and value.strip().lower() in NONE_WORDS)
                setattr(cfg, head, None if empty else apply_overrides(nested(), dict(value), f"{where}.{head}"))
            continue
        if dot:
            raise DpbenchError(f"{where}.{head} has no fields of its own ('{key}')")
        if isinstance(value, str):
            try:
                value = parse_value(value, hints[head])
            except ValueError as exc:
                raise DpbenchError(f"bad value for {where}.{key} ({_type_name(hints[head])}): {exc}") from None
        elif isinstance(value, list):
            value = tuple(value)
        setattr(cfg, head, value)
    return cfg


def build_configs(
    policy_cls: type[Policy],
    preset: str,
    overrides: dict[str, str] | None = None,
    image_obs: bool = False,
    task: str | None = None,
) -> tuple[PolicyConfig, TrainConfig]:
    """Preset, then the policy's ``task_overrides`` for ``task`` (every preset but smoke), then
    ``--set policy.x=..`` / ``--set train.y=..`` overrides. With ``image_obs`` the policy config also
    gets the preset's image encoder (``--set policy.vision.x=..``)."""
    if preset not in policy_cls.presets:
        raise DpbenchError(
            f"policy '{policy_cls.name}' has no preset '{preset}'; choose one of {', '.join(policy_cls.presets)}"
        )
    pol_over, train_over = policy_cls.presets[preset]
    if task in policy_cls.task_overrides and preset != "smoke":
        task_pol, task_train = policy_cls.task_overrides[task]
        pol_over, train_over = {**pol_over, **task_pol}, {**train_over, **task_train}
    pcfg = apply_overrides(policy_cls.Config(), dict(pol_over), f"{policy_cls.name} config")
    if image_obs:
        pcfg.vision = apply_overrides(VisionConfig(), dict(VISION_PRESETS.get(preset, {})), "vision config")
        train_over = {**train_over, **IMAGE_TRAIN_PRESETS.get(preset, {})}
    tcfg = apply_overrides(TrainConfig(), dict(train_over), "train config")
    pol_cli, train_cli = {}, {}
    for key, value in (overrides or {}).items():
        scope, _, name = key.partition(".")
        if scope == "policy" and name:
            pol_cli[name] = value
        elif scope == "train" and name:
            train_cli[name] = value
        else:
            raise DpbenchError(f"override '{key}' must look like policy.FIELD=VALUE or train.FIELD=VALUE")
    return apply_overrides(pcfg, pol_cli, f"{policy_cls.name} config"), apply_overrides(tcfg, train_cli, "train config")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain JSON data; an unset image encoder is left out, so low-dim configs hash as before."""
    out = json.loads(json.dumps(dataclasses.asdict(cfg)))
    if out.get("vision", 0) is None:
        del out["vision"]
    return out


# ------------------------------------------------------------------------------- checkpoints
def save_policy(policy: Policy, path: str | Path, meta: dict[str, Any]) -> Path:
    """Weights as safetensors (no code can ride along) plus plain-JSON metadata."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {
        "policy": policy.name,
        "policy_class": f"{type(policy).__module__}:{type(policy).__qualname__}",
        "config": config_to_dict(policy.config),
        "spec": policy.spec.to_dict(),
        **meta,
    }
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in policy.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"dpbench": json.dumps(header)})
    tmp.replace(path)
    return path


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    from safetensors import safe_open

    path = Path(path)
    if not path.exists():
        raise DpbenchError(f"{path}: no such checkpoint")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:
        raise DpbenchError(
            f"{path}: not a dpbench safetensors checkpoint. dpbench never unpickles checkpoints, since a "
            "pickle can run code; export the weights with dpbench (or safetensors) instead"
        ) from None
    if "dpbench" not in meta:
        raise DpbenchError(f"{path}: a safetensors file without dpbench metadata; it was not written by dpbench")
    return json.loads(meta["dpbench"])


def load_policy(
    path: str | Path, expect_spec: PolicySpec | None = None, overrides: dict[str, str] | None = None
) -> tuple[Policy, dict[str, Any]]:
    """Rebuild a policy from a checkpoint, refusing one whose shapes don't match ``expect_spec``.

    ``overrides`` (``{"policy.sampler": "ddim", ...}``) change inference-time fields such as the
    sampler; a change that alters the weights' shapes is refused when the weights are loaded.
    """
    from safetensors.torch import load_file

    meta = read_checkpoint_meta(path)
    spec = PolicySpec.from_dict(meta["spec"])
    if expect_spec is not None and spec != expect_spec:
        raise DpbenchError(
            f"{path}: checkpoint was trained for env '{meta.get('env')}' obs {spec.obs_shapes} action_dim "
            f"{spec.action_dim}, but this env gives obs {expect_spec.obs_shapes} action_dim {expect_spec.action_dim}"
        )
    cls = (
        get_policy_class(meta["policy"]) if meta["policy"] in available_policies() else _load_ref(meta["policy_class"])
    )
    cfg = apply_overrides(cls.Config(), meta["config"], f"{cls.name} config")
    for key, value in (overrides or {}).items():
        scope, _, name = key.partition(".")
        if scope != "policy" or not name:
            raise DpbenchError(f"override '{key}': a saved policy takes only policy.FIELD=VALUE")
        apply_overrides(cfg, {name: value}, f"{cls.name} config")
    policy = cls(spec, cfg)
    state = load_file(str(path))
    try:
        policy.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else "mismatch"
        raise DpbenchError(f"{path}: weights do not fit policy '{cls.name}' with the stored config ({first})") from None
    policy.eval()
    return policy, meta
