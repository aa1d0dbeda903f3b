"""How long a grid will take before it runs: ``dpbench sweep --dry-run`` lists every cell with its estimated
CPU-minutes and the total, from rates measured in the records already on disk (today's and superseded ones:
``evidence.rate_records``).

A cell costs ``steps x (CPU-seconds per training step) + episodes x (CPU-seconds per evaluation episode)``,
where episodes = evaluations x ``train.eval_episodes`` + ``train.heldout_episodes``. Both rates come from
CPU records (wall seconds x the cores the cell kept busy, ``dpbench.records.busy_cores``; a record's periodic
evaluations, median), looked up in tiers:

1. the same policy, task and obs mode: for training, this config's records, else the task's other
   configs; for evaluation, the records in the cell's action space, else in any;
2. else the same policy and obs mode on other tasks, then the same policy on other tasks with the same
   kind of observation (state: Push-T keypoints and robomimic low_dim; image). Training costs the same per
   step; an evaluation episode is scaled by the env step times measured in ``results/robomimic_env.json``
   and ``results/pusht_env.json`` (``benchmarks/bench_*_env.py``) and by how long episodes run: the envs
   step until an episode is solved (about its demonstrator's length, ``demo_lengths``) or reaches the
   horizon, in the share of episodes the policy solves (measured on the other task; on this one, the
   paper's avg-last-10 success, ``expected_success``), while the policy plans for the whole batch of test
   episodes until its last one ends (``_batch_steps``). Without those figures, per step of the horizon;
3. else no estimate ("?"), and the total says how many cells it leaves out.

For training, the kind of CPU outranks the task. Before the tiers above, a state-observation cell whose model
is known (``cost_key``: the policy's config and the batch size) takes the training records made on this
machine's kind of CPU (``hardware.cpu_capability``, the SIMD level torch's kernels use: AVX2 or AVX512, and,
where both this machine and the record know it, ``hardware.cpu_family``: a Zen 4 and a Zen 5 both run AVX-512
kernels, yet LSTM-GMM's ToolHang step took 2.0x as long on the Zen 4 and its evaluations 1.5-2x) with
that model and obs mode: this task's, else other tasks'. One model's training step costs about the same on
every robomimic low-dim task on one machine (DP-C 88-103 ms on Lift, Can, Square and ToolHang), while the same
Square mh cells trained 3.9x (DP-C) and 1.4-3.3x (LSTM-GMM) slower per step with AVX2 kernels than with AVX-512
(docs/measurements.md). Where any of these records names this machine's x86 family/model, those matched by the
SIMD level alone (made before records named it) are left out, even at one thread against two: a Zen 3's ToolHang
DP-C step cost 0.26 CPU-s at two threads and 0.25-0.26 at one, where an older AVX2 record said 0.36. Image tasks
differ by cameras, so they keep the tiers. Records of this kind come first
even where they ran beside another job and those of another kind did not. Evaluation keeps the tiers: an
episode's length follows the policy's success on the task, which another task's records do not know. Within
a tier, records of this kind come first (in tier 2, the tasks that have such records), then one-thread ones,
then those made under today's protocol on cores no other job shared. Records made before dpbench recorded
the SIMD level (commit d127b68) are of no known kind.

Episode rates are kept per step of the task's ph horizon and scaled to the cell's: a policy trained on mh
demonstrations runs Lift, Can and Square episodes to 500 steps, not 400 (an upper bound for its cell).

The figures are for planning, not for a record (``benchmarks/check_estimate.py`` measures how close they come).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from statistics import median
from typing import Any

from dpbench.records import PROTOCOL_VERSION, busy_cores, config_hash, process_kinds
from dpbench.sweep.evidence import SUPERSEDED, demo_lengths, env_step_ms, expected_success, record_horizon
from dpbench.tasks import get_task

OBS_KIND = {"keypoints": "state", "low_dim": "state", "state": "state", "image": "image"}


@dataclass(frozen=True)
class Rate:
    """CPU-seconds per unit (a training step, or an evaluation episode), where the figure came from, and
    whether every record behind it ran on this machine's kind of CPU."""

    seconds: float
    basis: str
    this_cpu: bool = False
    other_task: bool = False  # measured on other tasks (tier 2 of the module docstring)
    superseded: bool = False  # some record behind it is superseded (its timing stands, its scores do not)


@dataclass(frozen=True)
class CellEstimate:
    """A cell's estimated CPU-minutes: training and evaluation (periodic + held-out); None where no record
    measured a rate for the policy and obs mode."""

    train_min: float | None
    eval_min: float | None
    basis: str
    this_cpu: bool = False  # both rates measured on this machine's kind of CPU
    other_task: bool = False  # either rate measured on other tasks only
    superseded: bool = False  # either rate measured partly in superseded records

    @property
    def total_min(self) -> float | None:
        """Training + evaluation minutes, or None if either is unknown."""
        if self.train_min is None or self.eval_min is None:
            return None
        return self.train_min + self.eval_min


def evaluation_count(
    steps: int, eval_every: int, eval_after: int, done_steps: int = 0, eval_pending: bool = False
) -> int:
    """Periodic evaluations of a run, as ``dpbench.train`` schedules them: every ``eval_every`` steps from
    ``eval_after`` on, and always at the last step; with ``done_steps``, only those still to come after a checkpoint
    at that step: its own evaluation ran before it was written, unless ``eval_pending`` (written just before it)."""
    periodic = {s for s in range(eval_every, steps + 1, eval_every) if s >= eval_after}
    return len({s for s in periodic | {steps} if s > done_steps or (eval_pending and s == done_steps)})


def cost_key(policy_config: dict[str, Any], batch_size: Any) -> str:
    """What sets the CPU cost of a training step on low-dim observations, whatever the task and the schedule:
    the policy's config (``config_to_dict``) and the training batch size, hashed like a record's config."""
    return config_hash({"policy": policy_config, "batch_size": batch_size})


def _clean(record: dict[str, Any]) -> bool:
    """A record whose timing is the best evidence: today's protocol, and no other job shared its cores."""
    contention = record.get("wall", {}).get("contention", {})
    return record.get("protocol", 1) == PROTOCOL_VERSION and not any(p.get("contended") for p in contention.values())


@dataclass(frozen=True)
class _Measured:
    """One CPU record's rates, and what decides how much to trust them."""

    config_hash: str
    action_mode: str | None  # the record's (robomimic abs | delta; None for Push-T)
    step_s: float | None  # CPU-seconds per training step
    episode_s: float | None  # CPU-seconds per evaluation episode, at the task's ph horizon
    this_kind: bool  # made on this machine's kind of CPU (``same_kind``)
    clean: bool  # today's protocol, no other job on its cores (``_clean``)
    cost: str | None = None  # ``cost_key`` of its model and batch
    success: float | None = None  # the median success rate of its periodic evaluations
    threads: int = 1  # its torch threads: the dry run prices one thread per cell, and more cost more CPU per step
    superseded: bool = False  # read from superseded/ (``evidence.rate_records``)
    # this machine names its x86 family/model and the record does not: matched by the SIMD level alone (a machine
    # that names none has the SIMD level for its kind, ``host.cpu_kind``: every match is of its kind)
    by_simd_alone: bool = False


def same_kind(hardware: dict[str, Any], cpu_capability: str | None, cpu_family: str | None = None) -> bool:
    """Whether a record's ``hardware`` is this machine's kind of CPU: the same SIMD level torch uses
    (``cpu_capability``; never when this machine's is unknown) and, where both know it, the same x86 family/model
    (``cpu_family``, e.g. "25/17" Zen 4 against "26/2" Zen 5). Records older than ``cpu_family`` go by the
    SIMD level alone, so this is looser than equal ``dpbench.host.cpu_kind`` names, which the tables show."""
    if not cpu_capability or hardware.get("cpu_capability") != cpu_capability:
        return False
    theirs = hardware.get("cpu_family")
    return not (cpu_family and theirs) or theirs == cpu_family


def _best(entries: list[_Measured]) -> list[_Measured]:
    """Of one tier's records: those of this machine's kind of CPU where any (those that name its family/model
    before those matched by the SIMD level alone), and of those the clean ones where any."""
    pool = [e for e in entries if e.this_kind] or entries
    pool = [e for e in pool if e.this_kind and not e.by_simd_alone] or pool
    pool = [e for e in pool if e.threads == 1] or pool
    return [e for e in pool if e.clean] or pool


class Rates:
    """Training and evaluation rates measured in records, looked up as the module docstring says.
    ``cpu_capability``, ``cpu_family``: this machine's (``dpbench.host.cpu_capability()``, ``cpu_family()``);
    no ``cpu_capability``: no record counts as this kind (``same_kind``)."""

    def __init__(
        self,
        records: list[dict[str, Any]],
        step_ms: dict[tuple[str, str], float] | None = None,
        cpu_capability: str | None = None,
        lengths: dict[str, float] | None = None,
        cpu_family: str | None = None,
    ) -> None:
        self.step_ms = env_step_ms() if step_ms is None else step_ms
        self.lengths = demo_lengths() if lengths is None else lengths
        self.by_key: dict[tuple[str, str, str], list[_Measured]] = defaultdict(list)
        for r in records:
            hw = r.get("hardware") or {}
            if hw.get("device", "cpu") != "cpu" or not r.get("history"):
                continue
            train_cores, eval_cores = (busy_cores(r, phase) for phase in ("train", "eval"))
            steps = r["history"][-1]["step"]
            evals = [h["eval_seconds"] for h in r["history"] if h.get("eval_seconds")]
            config = r.get("config") or {}
            episodes = config.get("train", {}).get("eval_episodes")
            cost = cost_key(config["policy"], config.get("train", {}).get("batch_size")) if "policy" in config else None
            # per episode at the task's (ph) horizon: an mh record's episodes may have run longer
            at_ph = get_task(r["env"]).max_episode_steps / record_horizon(r)
            self.by_key[(r["policy"], r["env"], r["obs"])].append(
                _Measured(
                    r["config_hash"],
                    r.get("action_mode"),
                    r["wall"]["train_s"] * train_cores / steps if steps > 0 else None,
                    median(evals) * eval_cores / episodes * at_ph if evals and episodes else None,
                    same_kind(hw, cpu_capability, cpu_family) and len(process_kinds(r)) <= 1,  # not mixed kinds
                    _clean(r),
                    cost,
                    median(rates)
                    if (rates := [h["success_rate"] for h in r["history"] if "success_rate" in h])
                    else None,
                    int(hw.get("torch_threads") or 1),
                    bool(r.get(SUPERSEDED)),
                    bool(cpu_family) and not hw.get("cpu_family"),
                )
            )

    def _this_kind(
        self, policy: str, env: str, obs: str, cost: str | None
    ) -> tuple[list[_Measured], dict[tuple[str, str, str], list[_Measured]]]:
        """This machine's kind's training records of the model ``cost`` (``cost_key``) in obs mode ``obs``: this
        task's, and the other tasks' by (policy, task, obs) key; ([], {}) when ``cost`` is None or the obs is
        an image (cameras differ by task)."""
        if cost is None or OBS_KIND.get(obs) != "state":
            return [], {}
        mine = lambda e: e.step_s is not None and e.this_kind and e.cost == cost  # noqa: E731
        own = [e for e in self.by_key.get((policy, env, obs), []) if mine(e)]
        other = {k: v for k, v in self._other_tasks(policy, lambda o: o == obs, mine).items() if k[1] != env}
        if any(not e.by_simd_alone for e in [*own, *(e for v in other.values() for e in v)]):
            # records that name this machine's family/model outrank those matched by the SIMD level alone, whatever
            # their threads: one SIMD level spans CPU generations 2-4x apart, two threads cost well under 2x
            own = [e for e in own if not e.by_simd_alone]
            other = {k: kept for k, v in other.items() if (kept := [e for e in v if not e.by_simd_alone])}
        return own, other

    def train_rate(self, policy: str, env: str, obs: str, chash: str, cost: str | None = None) -> Rate | None:
        """CPU-seconds per training step: this kind of CPU's records of the model ``cost`` (this task's, then
        another's), then this config's records, this task's, another task's (the module docstring)."""
        mine, mine_other = self._this_kind(policy, env, obs, cost)
        # one thread first, another task's before this one's: a step costs the same on every task (DESIGN.md),
        # but two threads cost more CPU-seconds per step than the one a sweep cell gets
        single = [e for e in mine if e.threads == 1]
        single_other = {k: one for k, v in mine_other.items() if (one := [e for e in v if e.threads == 1])}
        if single:
            return _own_task([(single, " of this model")], lambda e: e.step_s)
        if single_other:
            return _pooled_steps(single_other, ", this model")
        if mine:
            return _own_task([(mine, " of this model, several threads")], lambda e: e.step_s)
        if mine_other:
            return _pooled_steps(mine_other, ", this model, several threads")
        same = [e for e in self.by_key.get((policy, env, obs), []) if e.step_s is not None]
        exact = [e for e in same if e.config_hash == chash]
        own = _own_task([(exact, " of this config"), (same, ", other configs")], lambda e: e.step_s)
        if own:
            return own
        for alike in _alike(obs):
            other = self._other_tasks(policy, alike, lambda e: e.step_s is not None)
            if other:
                return _pooled_steps(other)
        return None

    def episode_rate(
        self, policy: str, env: str, obs: str, action_mode: str | None = None, success: float | None = None
    ) -> Rate | None:
        """CPU-seconds per evaluation episode: this task's records in the cell's ``action_mode`` (a policy that
        fails in one action space runs its episodes to the horizon, and one that succeeds stops early), then
        in any, then another task's scaled to this one for a policy that solves ``success`` of its episodes
        (None: as often as there; the module docstring)."""
        same = [e for e in self.by_key.get((policy, env, obs), []) if e.episode_s is not None]
        matching = [e for e in same if e.action_mode == action_mode]
        own = _own_task([(matching, ""), (same, " in another action space")], lambda e: e.episode_s)
        if own:
            return own
        for alike in _alike(obs):
            other = self._other_tasks(policy, alike, lambda e: e.episode_s is not None)
            if other:
                return self._scaled_rate(other, env, obs, success)
        return None

    def _scaled_rate(
        self, other: dict[tuple[str, str, str], list[_Measured]], env: str, obs: str, success: float | None = None
    ) -> Rate:
        """The median over ``other``'s tasks of their episode seconds, each scaled to ``env``/``obs`` (``_scaled``)
        for a policy that succeeds in ``success`` of the episodes there (None: as often as on the other task)."""
        scaled = []
        for k, v in other.items():
            measured = [e.success for e in v if e.success is not None]
            there = median(measured) if measured else None
            scaled.append(self._scaled(median(e.episode_s for e in v), k[1], k[2], env, obs, there, success))
        where = ", ".join(f"{e}/{o}" for _, e, o in other)
        return _rate(scaled, f"scaled from {where}", [e for v in other.values() for e in v], other_task=True)

    def _other_tasks(
        self, policy: str, alike: Callable[[str], bool], has: Callable[[_Measured], bool]
    ) -> dict[tuple[str, str, str], list[_Measured]]:
        """Each other task's best records (``_best``) for ``policy`` in an obs mode ``alike`` accepts, sorted;
        only the tasks with records of this machine's kind of CPU, where any has them."""
        found = {}
        for k, entries in sorted(self.by_key.items()):
            usable = [e for e in entries if has(e)]
            if k[0] == policy and alike(k[2]) and usable:
                found[k] = _best(usable)
        mine = {k: v for k, v in found.items() if v[0].this_kind}  # _best keeps only this kind where any
        return mine or found

    def _scaled(
        self,
        seconds: float,
        env: str,
        obs: str,
        to_env: str,
        to_obs: str,
        success: float | None = None,
        to_success: float | None = None,
    ) -> float:
        """An episode's seconds on ``env``/``obs`` as seconds on ``to_env``/``to_obs``.

        Without success rates: per step of the horizon, the policy's share (the measured env step taken off) plus
        the other env's step. With the share of episodes the policy solves on each side (``success``,
        ``to_success``) and both tasks' solved-episode lengths (``demo_lengths``): the envs step only until an
        episode ends (a solved one after about its demonstrator's length), while the policy plans for the whole
        batch of test episodes until the last one ends (the horizon, unless every episode is solved:
        ``_batch_steps``)."""
        horizon, to_horizon = get_task(env).max_episode_steps, get_task(to_env).max_episode_steps
        there, here = self.step_ms.get((env, obs)), self.step_ms.get((to_env, to_obs))
        length, to_length = self.lengths.get(env), self.lengths.get(to_env)
        if here is None or there is None:
            return seconds / horizon * to_horizon
        to_success = success if to_success is None else to_success
        if success is None or length is None or to_length is None:
            return (max(seconds / horizon - there / 1000, 0.0) + here / 1000) * to_horizon
        runs = success * length + (1 - success) * horizon  # env steps an episode runs, on average
        per_plan_step = max(seconds - there / 1000 * runs, 0.0) / _batch_steps(success, length, horizon)
        to_runs = to_success * to_length + (1 - to_success) * to_horizon
        return per_plan_step * _batch_steps(to_success, to_length, to_horizon) + here / 1000 * to_runs


def _batch_steps(success: float, length: float, horizon: int, batch: int = 50) -> float:
    """Expected steps a batch of ``batch`` test episodes runs: to the horizon unless every episode is solved (then
    about 1.5x a solved episode's mean length, the longest of the batch)."""
    solved = success**batch
    return solved * min(1.5 * length, horizon) + (1 - solved) * horizon


def _pooled_steps(other: dict[tuple[str, str, str], list[_Measured]], what: str = "") -> Rate:
    """The median training step of other tasks' records, pooled (a step costs the same on every task)."""
    best = [e for v in other.values() for e in v]
    where = ", ".join(sorted(f"{e}/{o}" for _, e, o in other))
    return _rate([e.step_s for e in best], f"from {where}{what}", best, other_task=True)


def _own_task(tiers: list[tuple[list[_Measured], str]], value: Callable[[_Measured], float | None]) -> Rate | None:
    """The rate of the first non-empty tier of a task's own records (``_best`` of it), its basis naming the
    tier; None when every tier is empty."""
    for tier, what in tiers:
        if tier:
            best = _best(tier)
            return _rate([value(e) for e in best], f"{len(best)} record(s){what}", best)
    return None


def _rate(values: list[float], basis: str, entries: list[_Measured], other_task: bool = False) -> Rate:
    """The median of ``values``, its basis, whether every record behind it is of this kind of CPU, and whether
    any is superseded (the basis says how many)."""
    mine = all(e.this_kind for e in entries)
    old = sum(e.superseded for e in entries)
    which = "superseded" if old == len(entries) else f"{old} of {len(entries)} superseded"
    if mine:  # a record without the family/model this machine has matches by the SIMD level: say so, not "kind"
        simd = any(e.by_simd_alone for e in entries)
        basis += ", this CPU's SIMD level (family/model unrecorded)" if simd else ", this CPU kind"
    basis += f", {which} records" if old else ""
    return Rate(median(values), basis, mine, other_task, bool(old))


def _alike(obs: str) -> tuple[Callable[[str], bool], ...]:
    """The fallback order for another task's rates: the same obs mode, then the same kind of observation."""
    return (lambda o: o == obs, lambda o: OBS_KIND.get(o) == OBS_KIND.get(obs))


def estimate_cell(
    policy: str,
    env: str,
    obs: str,
    tcfg: Any,
    chash: str,
    rates: Rates,
    action_mode: str | None = None,
    variant: str = "ph",
    cost: str | None = None,
    done_steps: int = 0,
    eval_pending: bool = False,
) -> CellEstimate:
    """A cell's CPU-minutes at ``tcfg``'s schedule (see the module docstring); ``action_mode``: the dataset's
    (robomimic abs | delta; None for Push-T); ``variant``: its demonstrations' (ph | mh); ``cost``: its model's
    ``cost_key`` (None: the tiers without it); ``done_steps``: the step of the checkpoint a resumed cell starts from
    (only the steps, evaluations and held-out episodes after it are priced; ``eval_pending``: its own evaluation
    too, as ``dpbench.train.checkpoint_progress`` says). Where the variant's horizon is longer
    (mh on Lift, Can, Square: 500 steps, not 400), episode times scale with it: an upper bound, exact for episodes
    that run to the horizon."""
    train = rates.train_rate(policy, env, obs, chash, cost)
    episode = rates.episode_rate(policy, env, obs, action_mode, expected_success(policy, env, obs, variant))
    n_evals = evaluation_count(tcfg.steps, tcfg.eval_every, tcfg.eval_after, done_steps, eval_pending)
    episodes = n_evals * tcfg.eval_episodes + tcfg.heldout_episodes
    horizon, base = get_task(env).for_variant(variant).max_episode_steps, get_task(env).max_episode_steps
    longer = f", x {horizon}/{base} steps ({variant} horizon)" if horizon != base else ""
    basis = (
        f"train: {train.basis if train else 'no record'}; eval: {episode.basis + longer if episode else 'no record'}"
    )
    return CellEstimate(
        train.seconds * max(tcfg.steps - done_steps, 0) / 60 if train else None,
        episode.seconds * episodes * horizon / base / 60 if episode else None,
        basis,
        bool(train and episode and train.this_cpu and episode.this_cpu),
        bool((train and train.other_task) or (episode and episode.other_task)),
        bool((train and train.superseded) or (episode and episode.superseded)),
    )
