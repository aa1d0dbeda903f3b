"""What the figures say beside their data (``dpbench.plots``): the name of each configuration, the score axis's
metric, whether the paper's number is a fair marker beside a cell (and how the paper made it), the CPU kinds behind
a time axis, Plain text and numbers, no matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dpbench.equal_time import named_cpu_kinds
from dpbench.paper_cells import PAPER_CAVEATS, TABLE_OF_OBS, current, paper_actions
from dpbench.results import PAPER_POLICY_NAMES, Group, paper_reference, short_hash
from dpbench.tasks import get_task

SCORE_METRICS = {"success": "success rate", "coverage": "mean episode max reward"}


def score_label(envs: Sequence[str], sep: str = "\n", what: str = "score") -> str:
    """The score axis' label for these tasks: what the paper's tables report on them (``Task.metric``): robomimic
    the success rate, Push-T the mean over episodes of the episode's max coverage reward."""
    metrics = sorted({get_task(e).metric for e in envs})
    if len(metrics) == 1:
        return f"{what}{sep}({SCORE_METRICS[metrics[0]]})"
    return f"{what}{sep}(success rate; Push-T: mean episode max reward)"


def unlike_paper(g: Group) -> str:
    """Why the paper's number is no fair marker beside this group, as a label suffix ("" when it is): an older
    evaluation protocol (``[protocol v1]``), or another action space than the paper trained the policy in
    (``[abs actions]``: the tables' ᵛ and ᵈ)."""
    marks = [] if current(g) else [f"protocol v{g.records[0].get('protocol', 1)}"]
    if not paper_actions(PAPER_POLICY_NAMES.get(g.policy, g.policy), g):
        marks.append(f"{g.records[0].get('action_mode')} actions")
    return f" [{', '.join(marks)}]" if marks else ""


def paper_marker(g: Group) -> dict[str, Any] | None:
    """The paper's max / avg-last-10 to draw beside this group: None where it has none, or where the group is
    not comparable with it (``unlike_paper``)."""
    return None if unlike_paper(g) else paper_reference(g.policy, g.env, g.obs, g.variant)


def paper_caveat(g: Group) -> str:
    """How the paper's number for this group's cell was made another way than ours ("" when not): the tables' ⁱ."""
    key = (TABLE_OF_OBS.get(g.obs, ""), PAPER_POLICY_NAMES.get(g.policy, g.policy), (g.env, g.variant))
    return PAPER_CAVEATS.get(key, "")


UNLIKE_NOTE = (
    "[protocol vN]: made under an older evaluation protocol; [abs actions]: not the action space the paper trained "
    "the policy in; neither gets a paper marker."
)
LABEL_NOTE = (
    "Labels: the policy, then what tells a task's variants apart: preset, dataset, the config fields that differ "
    "('-': a field that config lacks)."
)


SCHEDULE_FIELDS = ("eval_every", "eval_after", "checkpoint_every", "eval_episodes")


def config_labels(groups: list[Group]) -> dict[Group, str]:
    """Short names: the policy, plus what tells its variants apart (preset, dataset, the config fields that
    differ, schedule fields last), e.g. "bc (steps=20000)"."""
    by_policy: dict[str, list[Group]] = {}
    for g in groups:
        by_policy.setdefault(g.policy, []).append(g)
    labels: dict[Group, str] = {}
    for policy, members in by_policy.items():
        variants = {(g.preset, g.dataset_kind, g.dataset_hash, g.config_hash): g for g in members}
        if len(variants) == 1:
            labels.update(dict.fromkeys(members, policy))
            continue
        configs = {key: flat_config(g) for key, g in variants.items()}
        differ = sorted(
            {k for c in configs.values() for k in c if len({str(o.get(k)) for o in configs.values()}) > 1},
            key=lambda k: (k in SCHEDULE_FIELDS, k),
        )
        for n_fields in range(min(len(differ), 3) + 1):  # as few differing fields as tell the variants apart
            for key, g in variants.items():
                parts = [g.preset] if len({k[0] for k in variants}) > 1 else []
                if len({k[1:3] for k in variants}) > 1:
                    parts.append(
                        g.dataset_kind
                        if len({k[1] for k in variants}) == len({k[1:3] for k in variants})
                        else f"{g.dataset_kind}:{short_hash(g.dataset_hash)}"
                    )
                parts += [f"{k}={configs[key].get(k, '-')}" for k in differ[:n_fields]]
                labels[g] = f"{policy} ({', '.join(parts)})" if parts else policy
            if len({labels[g] for g in variants.values()}) == len(variants):
                break
        for g in members:
            labels[g] = labels[variants[(g.preset, g.dataset_kind, g.dataset_hash, g.config_hash)]]
        if len({labels[g] for g in members}) < len(variants):  # still ambiguous: add the config hash
            for g in members:
                label, h = labels[g], g.config_hash[:6]  # e.g. one policy file before and after an edit
                labels[g] = f"{label[:-1]}, {h})" if label.endswith(")") else f"{label} ({h})"
    return labels


def device_names(g: Group) -> str:
    """The devices the group's records ran on ("cpu", "NVIDIA H200", comma-joined)."""
    return ", ".join(sorted({r.get("hardware", {}).get("device", "cpu") for r in g.records}))


def timed_labels(groups: list[Group]) -> dict[Group, str]:
    """Labels for time axes: with the device when the groups ran on different ones."""
    labels = config_labels(groups)
    if len({device_names(g) for g in groups}) > 1:
        labels = {g: f"{name} [{device_names(g)}]" for g, name in labels.items()}
    return labels


def flat_config(g: Group) -> dict[str, Any]:
    cfg = g.records[0].get("config", {})
    return {
        k: (tuple(v) if isinstance(v, list) else v)
        for part in ("policy", "train")
        for k, v in cfg.get(part, {}).items()
    }


def cpu_kinds_note(records: Sequence[dict[str, Any]]) -> str:
    """A legend's note of the CPU kinds behind a time axis (" (AVX2+unrecorded)", " (CPU kind unrecorded)"): an
    AVX2 machine trains up to ~4x slower than an AVX-512 one (docs/measurements.md)."""
    kinds = named_cpu_kinds(records)
    return f" ({kinds})" if kinds else " (CPU kind unrecorded)" if records else ""


def action_steps(g: Group) -> int:
    """T_a: the actions one planned chunk executes (the policy config's ``n_action_steps``; 1 where a config has
    none, as a policy that plans every step)."""
    return int(g.records[0].get("config", {}).get("policy", {}).get("n_action_steps") or 1)
