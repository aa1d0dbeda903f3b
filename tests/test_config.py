"""Typed, documented configs: every field has its meaning beside it, and `dpbench config` shows it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from dpbench.cli import main
from dpbench.config import TrainConfig, build_configs
from dpbench.config_docs import field_docs
from dpbench.errors import DpbenchError
from dpbench.policies import available_policies, get_policy_class
from dpbench.sweep.estimate import evaluation_count
from dpbench.vision import VisionConfig

RESULTS = Path(__file__).resolve().parents[1] / "results"  # the committed records
PAPER_GRID = Path(__file__).resolve().parents[1] / "sweeps" / "paper_table1_state.yaml"

CONFIGS = sorted({get_policy_class(n).Config for n in available_policies()}, key=lambda c: c.__name__)


@pytest.mark.parametrize("cls", [TrainConfig, VisionConfig, *CONFIGS], ids=lambda c: c.__name__)
def test_every_config_field_is_documented(cls):
    docs = field_docs(cls)
    assert set(docs) == {f.name for f in dataclasses.fields(cls)}
    missing = [name for name, doc in docs.items() if len(doc) < 8]
    assert not missing, f"{cls.__name__}: fields without a comment: {missing}"


def test_field_docs_read_the_comment_beside_the_field_and_the_lines_above():
    @dataclasses.dataclass
    class Example:
        # Two lines
        # above.
        a: int = 1  # and beside
        b: str = "x"
        # a section header, separated from the next field by a blank line, is nobody's doc

        c: float = 0.5  # only this

    assert field_docs(Example) == {"a": "Two lines above. and beside", "b": "", "c": "only this"}


def test_dpbench_config_prints_every_field_with_its_preset_and_paper_values(capsys):
    assert main(["config", "diffusion_transformer", "--preset", "quick"]) == 0
    out = capsys.readouterr().out
    pcfg, tcfg = build_configs(get_policy_class("diffusion_transformer"), "quick", task="pusht")
    lines = {
        line.split()[0]: line.split()
        for line in out.splitlines()
        if line.startswith("  policy.") or line.startswith("  train.")
    }
    for scope, cfg in (("policy", pcfg), ("train", tcfg)):
        for f in dataclasses.fields(cfg):
            assert f"{scope}.{f.name}" in lines, f"{scope}.{f.name} missing"
    # the Push-T recipe (task_overrides) applies, and the paper column shows the paper preset
    assert lines["policy.p_drop_attn"][2:4] == ["0.01", "0.01"]
    assert lines["policy.n_layer"][2:4] == ["4", "8"] and lines["train.steps"][2:4] == ["11000", "200000"]
    # Push-T has one dataset, the human demos: the header names no ph/mh variant (a robomimic one does)
    assert out.splitlines()[0].endswith("env pusht/keypoints")


def test_dpbench_config_refuses_unknown_names_in_one_line(capsys):
    assert main(["config", "nope"]) == 2
    assert "unknown policy 'nope'" in capsys.readouterr().err
    assert main(["config", "bc", "--set", "policy.widths=3"]) == 2
    assert "has no field 'widths'" in capsys.readouterr().err
    assert main(["config", "bc", "--set", "policy.dropuot=0.2"]) == 2
    assert "has no field 'dropuot'; fields: dropout, " in (err := capsys.readouterr().err)
    assert err.rstrip().endswith("did you mean 'dropout'?")


def test_a_typo_in_a_policys_own_preset_names_the_preset():
    """A plugin's `presets` are checked like --set, and the message says the typo is in the preset, not on the
    command line (before 2026-12-06 the message did not say whether the typo was in a preset or a --set)."""

    class Typo(get_policy_class("bc")):
        presets = {"smoke": ({"dropuot": 0.1}, {}), "quick": ({}, {"stpes": 5})}

    with pytest.raises(DpbenchError, match=r"config \(preset 'smoke'\) has no field 'dropuot'.*did you mean 'dropout'"):
        build_configs(Typo, "smoke")
    with pytest.raises(DpbenchError, match=r"train config \(\w+ preset 'quick'\) has no field 'stpes'.*'steps'"):
        build_configs(Typo, "quick")


def test_config_refuses_the_schedule_run_refuses(capsys, tmp_path):
    # 100 steps end before the quick preset's first evaluation (step 2500): run refuses before any data is
    # read, and config, which previews what run would train, refuses it in the same words
    cut = ["--set", "train.steps=100"]
    assert main(["config", "diffusion", "--env", "pusht", "--preset", "quick", *cut]) == 2
    config_err = capsys.readouterr().err
    assert "train.steps=100 ends before the first periodic evaluation (train.eval_after=2500)" in config_err
    run = ["run", "--policy", "diffusion", "--env", "pusht", "--preset", "quick", "--out", str(tmp_path), *cut]
    assert main(run) == 2
    assert capsys.readouterr().err == config_err
    # and config accepts the schedule the message suggests
    fixed = [*cut, "--set", "train.eval_after=50", "--set", "train.eval_every=5"]
    assert main(["config", "diffusion", "--env", "pusht", "--preset", "quick", *fixed]) == 0


@pytest.mark.parametrize(
    "setting, says",
    [
        ("train.steps=0", "train.steps=0 (must be >= 1)"),  # no training, and a record of nan scores
        ("train.steps=-5", "train.steps=-5 (must be >= 1)"),
        ("train.eval_every=0", "train.eval_every=0 (must be >= 1)"),  # a modulo by zero in the loop
        ("train.checkpoint_every=0", "train.checkpoint_every=0 (must be >= 1)"),
        ("train.batch_size=0", "train.batch_size=0 (must be >= 1)"),
        ("train.eval_episodes=0", "train.eval_episodes=0 (must be >= 1)"),  # it meant 50 episodes
        ("train.heldout_episodes=-1", "train.heldout_episodes=-1 (must be >= 0)"),
        ("train.lr=nan", "train.lr=nan (must be > 0 and finite)"),
        ("train.lr=-1", "train.lr=-1.0 (must be > 0 and finite)"),
        ("train.lr=inf", "train.lr=inf (must be > 0 and finite)"),  # nan loss at step 2
        ("train.weight_decay=-0.1", "train.weight_decay=-0.1 (must be >= 0"),  # trained and recorded as it was
        ("train.betas=2,2", "train.betas=2.0,2.0 (AdamW's two decay rates"),  # a traceback, and a stray lock file
        ("train.betas=0.9,nan", "train.betas=0.9,nan (AdamW's"),
        ("train.ema_max_decay=1.5", "train.ema_max_decay=1.5 (a decay rate"),  # a cap no decay (< 1) reaches
        ("train.ema_power=-1", "train.ema_power=-1.0 (must be >= 0"),  # clipped to decay 0: no averaging
        ("train.val_ratio=1.5", "train.val_ratio=1.5 (a fraction of the episodes"),  # trained on 1 episode
        ("train.max_train_episodes=0", "train.max_train_episodes=0 (must be >= 1"),
        ("train.lr_schedule=linear", "train.lr_schedule must be 'cosine' or 'constant', got 'linear'"),  # ran cosine
    ],
)
def test_run_and_config_refuse_a_count_or_rate_no_run_can_use_in_one_line(setting, says, capsys, tmp_path):
    # each of these used to fail with a traceback deep in training, or ran with another setting than the
    # record claims; now both commands refuse it before any data is read (the smoke preset: nothing to collect)
    smoke = ["--env", "pusht", "--preset", "smoke", "--set", setting]
    assert main(["config", "diffusion", *smoke]) == 2
    assert says in capsys.readouterr().err
    assert main(["run", "--policy", "diffusion", "--out", str(tmp_path), "--workers", "1", *smoke]) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err
    assert not (tmp_path / "records").exists()


def test_a_key_set_twice_with_two_values_is_refused(capsys):
    assert main(["config", "diffusion", "--set", "train.lr=1e-3", "--set", "train.lr=1e-4"]) == 2
    assert "--set train.lr is given twice ('1e-3' and '1e-4'); keep one" in capsys.readouterr().err
    assert main(["config", "diffusion", "--set", "train.lr=1e-3", "--set", "train.lr=1e-3"]) == 0  # the same: harmless
    assert main(["config", "diffusion", "--set", "train.lr=1e-4", "--set", "train.lr=0.0001"]) == 0  # one number
    assert "overrides {'train.lr': '1e-4'}" in capsys.readouterr().out


def test_policy_overrides_its_layers_cannot_take_are_one_message_before_any_data(capsys, tmp_path):
    # 2 attention heads cannot split 15 embedding channels: torch's AssertionError, now named with the override
    # that caused it, by run and by config alike
    smoke = ["--env", "pusht", "--preset", "smoke", "--set", "policy.n_emb=15"]
    assert main(["run", "--policy", "diffusion_transformer", "--out", str(tmp_path), "--workers", "1", *smoke]) == 2
    err = capsys.readouterr().err
    assert "policy diffusion_transformer cannot be built with policy.n_emb=15: AssertionError" in err
    assert "embed_dim must be divisible by num_heads" in err and err.count("\n") == 1
    assert main(["config", "diffusion_transformer", *smoke]) == 2
    assert capsys.readouterr().err == err
    run = ["run", "--policy", "diffusion", "--env", "pusht", "--preset", "smoke", "--out", str(tmp_path)]
    # an image encoder with 3 stage widths and 2 block counts built 2 stages while the record claimed 3
    image = [*run, "--obs", "image", "--workers", "1", "--set", "policy.vision.widths=8,16,32"]
    assert main(image) == 2
    assert "must give one block count per stage width" in capsys.readouterr().err


@pytest.mark.parametrize(
    "policy, setting",
    [
        ("bc", "policy.hidden_dims=0"),  # a zero-width layer: trained and recorded a constant policy
        ("ibc", "policy.hidden_dims=64,0"),  # the same
        ("bet", "policy.n_bins=0"),  # an IndexError after the data loaded
        ("bet", "policy.n_layer=0"),  # an IndexError after the data loaded
        ("diffusion_transformer", "policy.n_layer=0"),  # the same
        ("lstm_gmm", "policy.num_modes=0"),
    ],
)
def test_a_zero_size_or_count_is_refused_by_name(policy, setting, capsys):
    assert main(["config", policy, "--env", "pusht", "--preset", "smoke", "--set", setting]) == 2
    err = capsys.readouterr().err
    assert f"policy '{policy}': {setting.removeprefix('policy.')}; a size or count must be at least 1" in err


@pytest.mark.parametrize(
    "setting, says",
    [
        ("policy.kernel_size=4", "kernel_size=4 (must be odd"),  # built, then a length mismatch in training
        ("policy.kernel_size=0", "kernel_size=0 (must be odd"),
        ("policy.step_embed_dim=2", "step_embed_dim=2 (must be even and >= 4"),  # nan frequencies, trained on
        ("policy.step_embed_dim=0", "step_embed_dim=0 (must be even"),  # built and trained on no step signal
        ("policy.step_embed_dim=7", "step_embed_dim=7 (must be even"),
        ("policy.horizon=9", "horizon=9 with 2 down_dims (the down path halves the window 1x"),  # 9 -> 5 -> 10
    ],
)
@pytest.mark.parametrize("policy", ["diffusion", "diffusion_flow"])
def test_unet_sizes_that_build_but_cannot_train_are_refused(policy, setting, says, capsys):
    # each built (so the build check passed it) and then failed or trained on nan in the first forward pass
    assert main(["config", policy, "--env", "pusht", "--preset", "smoke", "--set", setting]) == 2
    err = capsys.readouterr().err
    assert f"policy '{policy}'" in err and says in err and err.count("\n") == 1


@pytest.mark.parametrize("policy", sorted(available_policies()))
def test_long_demo_tasks_train_for_the_originals_epochs_not_its_steps(policy):
    """The original fixes epochs per robomimic task (num_epochs: 5000 in its lowdim workspaces), so its
    steps grow with the data; Transport's and ToolHang's demos are ~3x Square's (488 / 548 vs 160 steps on
    average), so their budgets are 3x, with the evaluation schedule scaled alike (same evaluation count)."""
    from dpbench.sweep.estimate import evaluation_count

    cls = get_policy_class(policy)
    for preset in ("quick", "paper"):
        _, square = build_configs(cls, preset, task="square")
        for task in ("transport", "tool_hang"):
            _, long = build_configs(cls, preset, task=task)
            assert long.steps == 3 * square.steps, (preset, task)
            assert (long.eval_every, long.eval_after, long.checkpoint_every) == (
                3 * square.eval_every,
                3 * square.eval_after,
                3 * square.checkpoint_every,
            )
            assert evaluation_count(long.steps, long.eval_every, long.eval_after) == evaluation_count(
                square.steps, square.eval_every, square.eval_after
            )
            assert (long.batch_size, long.lr, long.warmup_steps) == (square.batch_size, square.lr, square.warmup_steps)
    # mh sets hold 300 demos against ph's 200 (robomimic's and scripted-mh): 1.5x the steps, same evaluations
    _, square = build_configs(cls, "quick", task="square")
    _, square_mh = build_configs(cls, "quick", task="square", variant="mh")
    assert 2 * square_mh.steps == 3 * square.steps and 2 * square_mh.eval_every == 3 * square.eval_every
    assert evaluation_count(square_mh.steps, square_mh.eval_every, square_mh.eval_after) == 11
    for preset in cls.presets:  # every scaled schedule is whole steps (else ValueError)
        for task, variant in (("transport", "mh"), ("lift", "mh"), ("tool_hang", "ph")):
            build_configs(cls, preset, task=task, variant=variant)
    # smoke stays seconds long everywhere, and --set still decides last
    assert build_configs(cls, "smoke", task="transport")[1].steps == build_configs(cls, "smoke", task="square")[1].steps
    assert build_configs(cls, "quick", {"train.steps": "40"}, task="transport")[1].steps == 40


ROBOMIMIC = ("lift", "can", "square", "transport", "tool_hang")


def test_robomimic_gives_dp_and_lstm_gmm_the_originals_equal_epochs_and_trains_no_policy_less():
    """The original trains DP-C, DP-T and LSTM-GMM for the same epochs on every robomimic task (num_epochs: 5000 at
    batch 256 in train_diffusion_unet_lowdim_workspace.yaml, train_diffusion_transformer_lowdim_workspace.yaml and
    train_robomimic_lowdim_workspace.yaml). dpbench's quick budgets are steps tuned on Push-T, where DP-C's knee
    (5000) is a third of LSTM-GMM's (15000); on robomimic that left DP-C's curves rising at their last evaluation.
    So on robomimic the three train the same windows (steps x batch), at least LSTM-GMM's, while Push-T keeps each
    policy's own knee and image presets keep theirs."""

    def windows(policy: str, task: str, preset: str = "quick", **kw) -> int:
        tcfg = build_configs(get_policy_class(policy), preset, task=task, **kw)[1]
        return tcfg.steps * tcfg.batch_size

    for task in ROBOMIMIC:
        for variant in ("ph", "mh"):
            dp, dpt, lstm = (
                windows(p, task, variant=variant) for p in ("diffusion", "diffusion_transformer", "lstm_gmm")
            )
            assert dp == dpt == lstm, (task, variant, dp, dpt, lstm)
        for policy in sorted(available_policies()):
            # no baseline loses training: BET's own 30k-step knee is longer and stays
            own = build_configs(get_policy_class(policy), "quick", task="pusht")[1]
            assert windows(policy, task) >= max(
                windows("lstm_gmm", task), own.steps * own.batch_size * (3 if task in ("transport", "tool_hang") else 1)
            )
            _, tcfg = build_configs(get_policy_class(policy), "quick", task=task)
            assert evaluation_count(tcfg.steps, tcfg.eval_every, tcfg.eval_after) == 11, (policy, task)
    # Push-T keeps the measured knees (DP-C 5000 steps: docs/measurements.md) and the image presets theirs
    assert build_configs(get_policy_class("diffusion"), "quick", task="pusht")[1].steps == 5000
    image = build_configs(get_policy_class("diffusion"), "quick", task="square", image_obs=True)[1]
    assert image.steps == build_configs(get_policy_class("diffusion"), "quick", task="pusht", image_obs=True)[1].steps
    # the paper presets already train far more than the floor; --set still decides last
    assert build_configs(get_policy_class("diffusion"), "paper", task="square")[1].steps == 200_000
    assert build_configs(get_policy_class("diffusion"), "quick", {"train.steps": "40"}, task="square")[1].steps == 40


def test_the_floor_fits_any_batch_size_and_lifts_quick_presets_only(monkeypatch):
    # a plugin's quick preset at another batch size: lifted to >= 960,000 windows on whole, budget-shaped steps, so
    # that mh's 1.5x and Transport's 3x stay whole; by hand: ceil(960,000 / 256) = 3750 -> 3760 (a multiple of
    # 40), ceil(960,000 / 128) = 7500 -> 7520
    from dpbench.presets import budget

    cls = get_policy_class("bc")
    for batch, steps, lifted in ((256, 2000, 3760), (128, 4000, 7520)):
        monkeypatch.setitem(cls.presets, "quick", ({}, budget(steps, batch_size=batch)))
        assert build_configs(cls, "quick", task="square")[1].steps == lifted
        for task, variant in (("square", "mh"), ("transport", "mh"), ("tool_hang", "ph")):
            tcfg = build_configs(cls, "quick", task=task, variant=variant)[1]
            assert evaluation_count(tcfg.steps, tcfg.eval_every, tcfg.eval_after) == 11, (batch, task, variant)
    # another preset is the user's: a short debug preset stays short on robomimic (only the task scale applies)
    monkeypatch.setitem(cls.presets, "debug", ({}, budget(400, batch_size=8)))
    assert build_configs(cls, "debug", task="lift")[1].steps == 400
    assert build_configs(cls, "debug", task="transport")[1].steps == 1200


def test_dpbench_config_says_how_long_a_cell_trains_and_why(capsys):
    # by hand: DP-C's quick 5000 steps, x3 to the 15,000-step floor, x3 for Transport, x1.5 for mh = 67,500
    assert main(["config", "diffusion", "--env", "transport", "--variant", "mh"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("training length:"))
    assert "5000 steps x 3 (the robomimic floor" in line and "x 3 (transport's" in line and "x 3/2 (mh's" in line
    assert line.split(" = ")[1].startswith("67500,")
    # at the preset's own steps the line still says so, and why: LSTM-GMM's quick 15,000 steps meet the floor
    assert main(["config", "lstm_gmm", "--env", "square"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("training length:"))
    assert "15000 steps, unscaled: at or above the robomimic floor" in line
    assert main(["config", "diffusion", "--env", "pusht"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("training length:"))
    assert "5000 steps, unscaled: no robomimic floor (pusht is not a robomimic task)" in line
    # a set length is the user's, and a set batch keeps the steps: 15,000 x 256 = 3,840,000 windows
    assert main(["config", "diffusion", "--env", "square", "--set", "train.steps=9000"]) == 0
    assert "training length: 9000 steps, as --set train.steps asks" in capsys.readouterr().out
    assert main(["config", "diffusion", "--env", "square", "--set", "train.batch_size=256"]) == 0
    assert "= 15000, its evaluation schedule scaled alike; --set train.batch_size keeps the steps: 3,840,000" in (
        capsys.readouterr().out
    )
    # images keep their shared 9000-step schedule (no floor), still x3 on Transport; another --set keeps the line
    assert main(["config", "diffusion", "--env", "transport", "--obs", "image", "--set", "train.eval_episodes=5"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("training length:"))
    assert "9000 steps x 3 (transport's" in line and "floor" not in line and line.split(" = ")[1].startswith("27000,")


def test_a_cell_on_mh_data_resolves_to_the_mh_training_length():
    from dpbench.runner import CellSpec, resolve_config

    ph = resolve_config(CellSpec("diffusion", "square", 0, dataset="scripted"))
    mh = resolve_config(CellSpec("diffusion", "square", 0, dataset="scripted-mh"))
    assert (ph.variant, mh.variant) == ("ph", "mh")
    assert 2 * mh.tcfg.steps == 3 * ph.tcfg.steps and mh.chash != ph.chash


def test_a_schedule_left_to_the_defaults_scales_too_and_bad_budgets_are_one_line_errors(monkeypatch):
    from dpbench.presets import budget

    cls = get_policy_class("diffusion")
    monkeypatch.setitem(cls.presets, "bare", ({}, dict(steps=10_000)))  # eval_every etc. from TrainConfig
    _, square = build_configs(cls, "bare", task="square")
    _, transport = build_configs(cls, "bare", task="transport")
    assert transport.steps == 3 * square.steps and transport.eval_every == 3 * square.eval_every
    assert transport.checkpoint_every == 3 * square.checkpoint_every
    with pytest.raises(ValueError, match="multiple of 40"):
        budget(2020)  # its 101-step intervals could not take mh's 1.5x
    monkeypatch.setitem(cls.presets, "odd", ({}, dict(steps=2020, eval_every=101, eval_after=1010)))
    with pytest.raises(DpbenchError, match="not a whole number of steps"):
        build_configs(cls, "odd", task="square", variant="mh")


def test_dpbench_config_refuses_mh_on_a_ph_only_task(capsys):
    assert main(["config", "diffusion", "--env", "tool_hang", "--variant", "mh"]) == 2
    assert "ph demonstrations only" in capsys.readouterr().err


def test_a_name_spelt_as_the_tables_or_the_paper_spell_it_gets_a_guess(tmp_path, capsys):
    # The tables print the paper's labels (DP-C, LSTM-GMM, Push-T, ToolHang); a user who types one back gets the
    # registered name it stands for. Expected names by hand: the paper's DP-C is the CNN-based DP, which records
    # call 'diffusion'; DP-T is 'diffusion_transformer'; the env registry spells Push-T 'pusht'.
    out = tmp_path / "r"
    argv = ["run", "--policy", "DP-C,mypkg.MyPolicy,zilch", "--env", "Push-T", "--preset", "smoke", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "unknown env 'Push-T'; valid envs: can, lift, pusht, square, tool_hang, transport; did you mean 'pusht'?" in err
    )
    # each bad policy name gets its own hint: a guess, the module:Class form, or how to name one's own class
    assert "did you mean 'diffusion' for 'DP-C', 'mypkg:MyPolicy' for 'mypkg.MyPolicy'?; 'zilch': your own class" in err
    assert not out.exists()
    guessed = {
        ("config", "LSTM-GMM"): "lstm_gmm",
        ("config", "dp-t"): "diffusion_transformer",
        ("config", "difusion"): "diffusion",  # one letter dropped
        ("config", "diffusion_transfomer"): "diffusion_transformer",
        ("config", "bc", "--env", "ToolHang"): "tool_hang",
        ("config", "bc", "--env", "sqaure"): "square",  # two letters swapped
        ("config", "bc", "--preset", "quik"): "quick",
        ("config", "bc", "--env", "square", "--obs", "lowdim"): "low_dim",
        ("table", "--out", str(RESULTS), "--policy", "DP-T", "--no-write-readme"): "diffusion_transformer",
        ("run", "--env", "square", "--dataset", "scripted-delta-mh", "--out", str(out)): "scripted-mh-delta",
        ("sweep", str(PAPER_GRID), "--dry-run", "--policy", "DP-C", "--out", str(out)): "diffusion",
    }
    for argv, guess in guessed.items():
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert err.rstrip().endswith(f"did you mean '{guess}'?") and err.count("\n") == 1, (argv, err)
    # no guess where the likeliest names are several (DP: DP-C or DP-T?) or where one letter is another name
    # (ph vs mh: scripted-ph is not scripted-mh); the policy message then says how to name one's own class
    for argv in (
        ("config", "DP"),
        ("config", "diffusion_t"),
        ("run", "--env", "square", "--dataset", "scripted-ph", "--out", str(out)),
        ("run", "--env", "pusht", "--dataset", "scriptedMH", "--out", str(out)),
    ):
        assert main(list(argv)) == 2
        err = capsys.readouterr().err
        assert "did you mean" not in err and err.count("\n") == 1, (argv, err)
    assert main(["config", "nope"]) == 2
    assert "your own class: name it as module:Class" in capsys.readouterr().err
    assert not out.exists()


def test_a_records_non_default_normalizer_is_drift_from_its_preset():
    # train.normalizer is left out of the config hash at its default, "range"; a record trained with "original" must
    # still read as off its preset in tables (else it would rank level with the preset's own cells)
    import copy
    import json

    from dpbench.results import preset_drift

    record = json.loads(
        (
            RESULTS / "records" / "square-low_dim__lstm_gmm__scripted-mh-delta-946c65d0__quick-43c1e4bf41__seed1.json"
        ).read_text()
    )
    assert preset_drift(record) == {}  # made on the preset (its hash is the preset's: test_plugin)
    original = copy.deepcopy(record)
    original["config"]["train"]["normalizer"] = "original"
    assert preset_drift(original) == {"train.normalizer": "original"}


def test_the_policies_default_action_spaces_are_the_papers():
    # The paper's rows and the action space the original trains each in on robomimic (by hand: its baselines read
    # robomimic's delta low_dim.hdf5, DP its *_abs.hdf5), against both places dpbench states it
    from dpbench.paper_cells import PAPER_ACTION_MODE

    paper = {
        "lstm_gmm": "delta",
        "ibc": "delta",
        "bet": "delta",
        "diffusion_cnn": "abs",
        "diffusion_transformer": "abs",
    }
    assert paper == PAPER_ACTION_MODE
    assert {row: get_policy_class(row).default_action_mode for row in paper} == paper
    bad = type("Bad", (get_policy_class("bc"),), {"name": "bad", "default_action_mode": "absolute"})
    with pytest.raises(DpbenchError, match="default_action_mode = 'absolute'; it must be 'abs' or 'delta'"):
        bad.check_config(bad.Config())
