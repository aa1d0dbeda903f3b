"""`dpbench sweep --dry-run`: cells listed with estimated CPU-minutes from measured rates, worked by hand,
and nothing collected or run."""

from __future__ import annotations

import subprocess
import sys
import time
from types import SimpleNamespace

import pytest
import yaml
from test_tables import make_record

from dpbench.cli import main
from dpbench.host import cpu_capability, cpu_family
from dpbench.records import write_json_atomic
from dpbench.sweep.estimate import Rates, estimate_cell, evaluation_count
from dpbench.sweep.evidence import expected_success

QUICK = SimpleNamespace(steps=5000, eval_every=250, eval_after=2500, eval_episodes=50, heldout_episodes=200)


def _timed(policy: str, env: str, obs: str, train_s: float, eval_s: list[float], threads: int = 1) -> dict:
    """A record trained for 5000 steps in train_s wall seconds, whose evaluations of 50 episodes took eval_s."""
    r = make_record(policy, 0, [0.5] * len(eval_s), [True], obs=obs, preset="quick")
    r["env"] = env
    r["history"] = [
        {**h, "step": 5000 - 250 * i, "eval_seconds": e} for i, (h, e) in enumerate(zip(r["history"], eval_s))
    ]
    r["history"].reverse()
    r["wall"] = {"train_s": train_s, "eval_s": sum(eval_s), "total_s": train_s + sum(eval_s)}
    r["hardware"] = {**r["hardware"], "torch_threads": threads, "device": "cpu"}
    r["config"]["train"] = {"eval_episodes": 50}
    return r


def _square_dp_config() -> SimpleNamespace:
    """A prepared cell's config as the dry run reads it: DP-C's quick Square model on the QUICK schedule."""
    from dpbench.config import build_configs
    from dpbench.policies import get_policy_class

    pcfg = build_configs(get_policy_class("diffusion"), "quick", task="square")[0]
    tcfg = SimpleNamespace(**vars(QUICK), batch_size=64)
    return SimpleNamespace(policy_cls=get_policy_class("diffusion"), obs="low_dim", tcfg=tcfg, chash="h", pcfg=pcfg)


def _planned(cfg: SimpleNamespace, seed: int, cell: SimpleNamespace | None = None) -> SimpleNamespace:
    """A Square cell as ``dry_run_report`` reads a ``PlannedCell``: prepared (``cell``) or with its demos not
    collected yet (``cell`` None)."""
    spec = SimpleNamespace(policy="diffusion", env="square", seed=seed, dataset="scripted")
    problem = "demos not collected yet"  # read only where ``cell`` is None
    return SimpleNamespace(
        spec=spec, config=cfg, blocked=False, cell=cell, missing=None, action_mode="abs", problem=problem
    )


def _square_cell(workdir, seed: int = 0) -> SimpleNamespace:
    """A prepared Square DP-C cell whose checkpoint and lock live in ``workdir`` and which has no record."""
    cell_id = f"square-low_dim__diffusion__scripted-0123abcd__quick-h__seed{seed}"
    return SimpleNamespace(
        workdir=workdir, lock_dir=workdir, record_path=workdir / "none.json", cell_id=cell_id, variant="ph", data=None
    )


def test_evaluation_count_follows_the_training_schedule():
    # Every 250 steps from 2500 to 5000: 2500, 2750, ..., 5000 = 11 evaluations (the quick presets' 11).
    assert evaluation_count(5000, 250, 2500) == 11
    # A run whose last step is not on the grid still ends with an evaluation: 300, 600, 900, then 1000.
    assert evaluation_count(1000, 300, 0) == 4
    # Resumed from a checkpoint at step 3000 (its own evaluation done): 3250, 3500, ..., 5000 = 8 still to come;
    # from 2400, before the first one: all 11; from the last step: none (only the held-out episodes remain).
    assert evaluation_count(5000, 250, 2500, done_steps=3000) == 8
    assert evaluation_count(5000, 250, 2500, done_steps=2400) == 11
    assert evaluation_count(5000, 250, 2500, done_steps=5000) == 0
    # a checkpoint written before its step's evaluation: that one is still to come
    assert evaluation_count(5000, 250, 2500, done_steps=3000, eval_pending=True) == 9
    assert evaluation_count(5000, 250, 2500, done_steps=5000, eval_pending=True) == 1


def test_estimate_from_a_measured_record():
    rates = Rates([_timed("diffusion", "pusht", "keypoints", 600.0, [10.0, 12.0, 14.0], threads=2)], step_ms={})
    est = estimate_cell("diffusion", "pusht", "keypoints", QUICK, "anyhash", rates)
    # Training: 600 s x 2 threads / 5000 steps = 0.24 CPU-s per step; 5000 steps = 1200 s = 20 min.
    assert abs(est.train_min - 20.0) < 1e-9
    # Evaluation: median 12 s x 2 threads / 50 episodes = 0.48 s per episode; (11 x 50 + 200) episodes = 6 min.
    assert abs(est.eval_min - 750 * 0.48 / 60) < 1e-9
    assert est.total_min == est.train_min + est.eval_min


def test_a_record_that_measured_its_cores_is_costed_by_them_not_by_its_threads():
    # A 2-thread cell whose small model kept 1.1 cores busy while it trained and whose env workers kept 1.8 busy
    # while it evaluated: 600 s x 1.1 / 5000 = 0.132 CPU-s per step, 12 s x 1.8 / 50 = 0.432 per episode.
    r = _timed("diffusion", "pusht", "keypoints", 600.0, [10.0, 12.0, 14.0], threads=2)
    r["wall"]["contention"] = {"train": {"own_cores": 1.1}, "eval": {"own_cores": 1.8}}
    est = estimate_cell("diffusion", "pusht", "keypoints", QUICK, "anyhash", Rates([r], step_ms={}))
    assert est.train_min == pytest.approx(5000 * 600.0 * 1.1 / 5000 / 60)
    assert est.eval_min == pytest.approx(750 * 12.0 * 1.8 / 50 / 60)
    # a phase that did not measure them (None: resumed from an older checkpoint) falls back to the threads
    r["wall"]["contention"]["eval"]["own_cores"] = None
    est = estimate_cell("diffusion", "pusht", "keypoints", QUICK, "anyhash", Rates([r], step_ms={}))
    assert est.eval_min == pytest.approx(750 * 12.0 * 2 / 50 / 60)


def test_mh_cells_evaluate_over_the_longer_mh_horizon():
    # Square ph records: 0.48 s per episode. An mh cell's episodes may run 500 steps, not 400 (the original's
    # square config), so its evaluation estimate is 500/400 of the ph one; training is the same.
    rates = Rates([_timed("diffusion", "square", "low_dim", 600.0, [12.0], threads=2)], step_ms={})
    ph = estimate_cell("diffusion", "square", "low_dim", QUICK, "h", rates, "abs", "ph")
    mh = estimate_cell("diffusion", "square", "low_dim", QUICK, "h", rates, "abs", "mh")
    assert abs(mh.eval_min - 750 * 0.48 * 500 / 400 / 60) < 1e-9 and mh.train_min == ph.train_min
    assert "x 500/400 steps (mh horizon)" in mh.basis and "mh horizon" not in ph.basis
    # Transport's mh horizon is its ph one (700)
    tr = Rates([_timed("diffusion", "transport", "low_dim", 600.0, [12.0], threads=2)], step_ms={})
    assert estimate_cell("diffusion", "transport", "low_dim", QUICK, "h", tr, "abs", "mh").eval_min == pytest.approx(
        750 * 0.48 / 60
    )
    # An mh record (0.6 s per 500-step episode) is 0.48 s per 400-step ph episode: it is not scaled twice
    mh_record = _timed("diffusion", "square", "low_dim", 600.0, [15.0], threads=2)
    mh_record["dataset"] = {**mh_record["dataset"], "kind": "scripted-mh", "variant": "mh"}
    from_mh = Rates([mh_record], step_ms={})
    assert estimate_cell("diffusion", "square", "low_dim", QUICK, "h", from_mh, "abs", "mh").eval_min == pytest.approx(
        750 * 0.6 / 60
    )
    assert estimate_cell("diffusion", "square", "low_dim", QUICK, "h", from_mh, "abs", "ph").eval_min == pytest.approx(
        750 * 0.48 / 60
    )


def test_an_unmeasured_task_is_scaled_by_horizon_and_env_step_time():
    # DP measured on Lift (horizon 400): 50 episodes in 200 s = 4 s per episode = 10 ms per step, of which the
    # Lift env takes 6 ms: the policy's share is 4 ms. Transport (horizon 700, 15 ms per env step): 19 ms per
    # step, 13.3 s per episode.
    rates = Rates(
        [_timed("diffusion", "lift", "low_dim", 600.0, [200.0])],
        step_ms={("lift", "low_dim"): 6.0, ("transport", "low_dim"): 15.0},
        lengths={},  # no solved-episode lengths: every episode is taken to run to the horizon
    )
    est = estimate_cell("diffusion", "transport", "low_dim", QUICK, "h", rates)
    assert abs(est.eval_min - 750 * 0.019 * 700 / 60) < 1e-9
    assert abs(est.train_min - 10.0) < 1e-9  # the same 0.12 s per training step
    assert "scaled from lift" in est.basis and "from lift" in est.basis
    # Another policy's rates never stand in for this one.
    assert estimate_cell("ibc", "transport", "low_dim", QUICK, "h", rates).total_min is None
    # Push-T keypoints stand in for robomimic low_dim (both state observations) when nothing closer exists:
    # 4 s per 300-step episode, minus Push-T's 0.2 ms env step, plus Lift's 6 ms, over Lift's 400 steps.
    push = Rates(
        [_timed("diffusion", "pusht", "keypoints", 600.0, [200.0])],
        step_ms={("pusht", "keypoints"): 0.2, ("lift", "low_dim"): 6.0},
        lengths={},
    )
    rate = push.episode_rate("diffusion", "lift", "low_dim")
    assert abs(rate.seconds - (4.0 / 300 - 0.0002 + 0.006) * 400) < 1e-9 and "pusht/keypoints" in rate.basis


def test_a_scaled_episode_runs_the_envs_only_until_it_is_solved():
    # DP on Lift (horizon 400, 6 ms env steps, solved episodes ~60 steps): 4 s per episode, solving half of them.
    # Its envs ran 0.5 x 60 + 0.5 x 400 = 230 steps an episode (1.38 s); the other 2.62 s is planning, which runs
    # for the whole batch of 50 until its last episode ends: the horizon (0.5^50 of batches are all solved).
    # On Transport (horizon 700, 15 ms, solved ~500 steps) the paper's DP-C solves 0.82 of its episodes
    # (avg-last-10, Table I): planning 2.62 / 400 x 700, envs 0.015 x (0.82 x 500 + 0.18 x 700).
    record = _timed("diffusion", "lift", "low_dim", 600.0, [200.0])
    for h in record["history"]:
        h["success_rate"] = 0.5
    rates = Rates(
        [record],
        step_ms={("lift", "low_dim"): 6.0, ("transport", "low_dim"): 15.0},
        lengths={"lift": 60.0, "transport": 500.0},
    )
    want = 2.62 / 400 * 700 + 0.015 * (0.82 * 500 + 0.18 * 700)
    assert rates.episode_rate("diffusion", "transport", "low_dim", "abs", 0.82).seconds == pytest.approx(want)
    est = estimate_cell("diffusion", "transport", "low_dim", QUICK, "h", rates)  # 0.82 looked up from the paper
    assert est.eval_min == pytest.approx(750 * want / 60)
    # a policy the paper lacks is taken to solve as often as where it was measured: half
    half = 2.62 / 400 * 700 + 0.015 * (0.5 * 500 + 0.5 * 700)
    assert rates.episode_rate("diffusion", "transport", "low_dim", "abs").seconds == pytest.approx(half)
    # all solved: planning stops with the batch's longest episode, ~1.5 x 500 steps, capped at the horizon
    assert rates.episode_rate("diffusion", "transport", "low_dim", "abs", 1.0).seconds == pytest.approx(
        2.62 / 400 * 700 + 0.015 * 500
    )


def test_dry_run_collects_nothing_and_names_what_cannot_run(tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    monkeypatch.setenv("DPBENCH_CACHE", str(cache))
    out = tmp_path / "r"
    write_json_atomic(out / "records" / "x.json", _timed("diffusion", "lift", "low_dim", 600.0, [200.0]))
    cfg = tmp_path / "grid.yaml"
    grid = {"policies": ["diffusion"], "envs": ["square", "tool_hang"], "obs": ["low_dim"], "seeds": 2, "out": str(out)}
    grid["dataset"] = "scripted-mh"  # ToolHang has no mh demonstrations (robomimic's has none either)
    cfg.write_text(yaml.safe_dump(grid))
    assert main(["sweep", str(cfg), "--dry-run", "--workers", "2"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    square = [line for line in lines if "diffusion square/low_dim mh seed" in line]
    # by state, not by task name: a rate's basis ("[train: from tool_hang/low_dim]") may name ToolHang, when the
    # committed records of this machine's kind of CPU include a ToolHang one
    blocked = [line for line in lines if line.startswith("  blocked")]
    assert not any("tool_hang/low_dim mh seed" in line for line in lines)
    assert len(square) == 2 and all(line.startswith("  new ") and "not collected yet" in line for line in square)
    # the blocked cells of one task and reason share one line
    assert (
        len(blocked) == 1 and "2 cell(s) (diffusion 0, diffusion 1)" in blocked[0] and "tool_hang/low_dim" in blocked[0]
    )
    assert "tool_hang has ph demonstrations only" in blocked[0]
    assert "2 cell(s) to run" in text and "2 cell(s) cannot run here" in text
    assert "the collection of 1 dataset(s) first is not included" in text
    if cpu_capability():
        family = f" {cpu_family()}" if cpu_family() else ""  # host.cpu_kind's name: "AVX512 25/17"
        assert f"wholly from records made on this machine's kind of CPU ({cpu_capability()}{family})" in text
    assert not cache.exists() or not any(cache.rglob("*.hdf5"))  # nothing collected


def test_dry_run_counts_a_cell_recorded_from_demos_not_collected_here_as_recorded(tmp_path, monkeypatch, capsys):
    # A fresh machine has no demos yet, but the sweep's out holds a record of seed 0 (made elsewhere): the
    # dry run says so and leaves it out of the total, as the sweep will find it once the demos are collected.
    from dpbench.runner import CellSpec, resolve_config

    monkeypatch.setenv("DPBENCH_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "r"
    chash = resolve_config(CellSpec("diffusion", "square", 0, obs="low_dim", dataset="scripted")).chash
    rec = _timed("diffusion", "square", "low_dim", 600.0, [200.0])
    path = "$DPBENCH_CACHE/robomimic_square_ph_v4_200ep.hdf5"  # where this grid's demos would be collected
    rec["dataset"] = {"kind": "scripted", "path": path, "hash": "f38222057e878bde", "episodes": 200, "steps": 1}
    rec["config_hash"], rec["cell_id"] = chash, f"square-low_dim__diffusion__scripted-f3822205__quick-{chash}__seed0"
    write_json_atomic(out / "records" / f"{rec['cell_id']}.json", rec)
    grid = {"policies": ["diffusion"], "envs": ["square"], "obs": ["low_dim"], "seeds": 2, "out": str(out)}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump({**grid, "dataset": "scripted"}))
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--dry-run", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    lines = [line for line in text.splitlines() if "square" in line or "estimate" in line]
    assert lines[0].startswith("  recorded") and rec["cell_id"] in lines[0] and "not collected yet" in lines[0]
    assert lines[0].startswith("  recorded 13 min  (10 + 3)     ")  # its record's 600 + 200 wall seconds
    assert lines[1].startswith("  new ") and "seed 1" in lines[1]
    assert "1 cell(s) to run" in lines[2] and "\n  - 1 cell(s) have a record made from demos not collected here" in text
    assert lines[2].endswith("Not in the total: 1 recorded cell(s) and collecting 1 dataset(s) (below).")
    assert "the collection of 1 dataset(s) first is not included\n" in text  # seed 1 needs the demos anyway
    # seed 0 alone: nothing to train, but a real sweep still collects the demos to match the record to them
    (tmp_path / "one.yaml").write_text(yaml.safe_dump({**grid, "seeds": 1, "dataset": "scripted"}))
    assert main(["sweep", str(tmp_path / "one.yaml"), "--dry-run", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "estimate: no cell to run" in text and "the collection of 1 dataset(s) first is not included (1 of" in text
    # a record from other demos (another demonstrator version's file) is not this cell's
    rec["dataset"]["path"] = "$DPBENCH_CACHE/robomimic_square_ph_v3_200ep.hdf5"
    write_json_atomic(out / "records" / f"{rec['cell_id']}.json", rec)
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--dry-run", "--workers", "1"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "square" in line]
    assert len(lines) == 2 and all(line.startswith("  new ") for line in lines)


def test_superseded_records_still_time_their_model_and_today_s_record_wins_a_shared_cell(tmp_path, monkeypatch, capsys):
    # A record superseded for its training length (results/superseded/robomimic-floor) still measured its model's
    # CPU-seconds per step and per episode; the dry run reads it when no record of today has the cell's rates.
    from dpbench.runner import CellSpec, resolve_config
    from dpbench.sweep import evidence

    out = tmp_path / "r"
    old = _timed("ibc", "square", "low_dim", 700.0, [100.0])  # 5000 steps: 0.14 CPU-s a step; 2 s an episode
    write_json_atomic(out / "superseded" / "robomimic-floor" / "a.json", old)
    write_json_atomic(out / "superseded" / "robomimic-floor" / "speed.json", {"not": "a record"})
    write_json_atomic(out / "records" / "b.json", _timed("bc", "pusht", "keypoints", 10.0, [1.0]))
    assert [r["policy"] for r in evidence.rate_records([out])] == ["ibc", "bc"]
    newer = {**_timed("ibc", "square", "low_dim", 1400.0, [100.0]), "cell_id": old["cell_id"]}
    write_json_atomic(out / "records" / "c.json", newer)
    assert sorted(r["wall"]["train_s"] for r in evidence.rate_records([out])) == [10.0, 1400.0]

    # by hand: IBC on Square ph trains the robomimic floor's 15,000 steps at 0.14 CPU-s = 35 min, and evaluates
    # 11 x 50 + 200 held-out = 750 episodes at 2 s = 25 min, from the superseded record alone
    (out / "records" / "c.json").unlink()
    cfg = resolve_config(CellSpec("ibc", "square", 0, dataset="scripted-delta"))
    rates = Rates(evidence.rate_records([out]), step_ms={}, lengths={})
    est = estimate_cell("ibc", "square", "low_dim", cfg.tcfg, cfg.chash, rates, "delta")
    assert (est.train_min, est.eval_min) == pytest.approx((35.0, 25.0))
    # and says so: its scores no longer stand, so a reader of the dry run should know what priced the cell
    assert est.superseded and est.basis.count("superseded records") == 2
    # beside a record of today, the basis counts them; with none, it names none
    today = {**_timed("ibc", "square", "low_dim", 700.0, [100.0]), "cell_id": "today"}
    both = Rates([*evidence.rate_records([out]), today], step_ms={}, lengths={})
    est = estimate_cell("ibc", "square", "low_dim", cfg.tcfg, cfg.chash, both, "delta")
    assert "1 of 2 superseded records" in est.basis and est.superseded
    est = estimate_cell("ibc", "square", "low_dim", cfg.tcfg, cfg.chash, Rates([today], step_ms={}), "delta")
    assert "superseded" not in est.basis and not est.superseded
    # the dry run's headline counts the cells priced so (the checkout's own results/ left out)
    monkeypatch.setattr(evidence, "RESULTS", tmp_path / "none")
    monkeypatch.setenv("DPBENCH_CACHE", str(tmp_path / "cache"))
    grid = {"policies": ["ibc"], "envs": ["square"], "obs": ["low_dim"], "seeds": 1, "out": str(out)}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump({**grid, "dataset": "scripted-delta"}))
    assert main(["sweep", str(tmp_path / "grid.yaml"), "--dry-run", "--workers", "1"]) == 0
    text = capsys.readouterr().out
    assert "superseded records]" in text and "\n  - 1 of the 1 lean on superseded records" in text


def test_paper_grid_file_is_the_papers_table1():
    from pathlib import Path

    from dpbench.sweep import Sweep

    specs = Sweep.from_yaml(Path(__file__).resolve().parents[1] / "sweeps" / "paper_table1_state.yaml").specs()
    # Table I: 5 policies x 10 columns (4 tasks x ph/mh, ToolHang ph, Push-T) x 3 seeds.
    assert len(specs) == 150
    variant = {"scripted": "ph", "scripted-delta": "ph", "scripted-mh": "mh", "scripted-mh-delta": "mh", "human": "ph"}
    columns = {(s.env, variant[s.dataset]) for s in specs}
    assert columns == {(t, v) for t in ("lift", "can", "square", "transport") for v in ("ph", "mh")} | {
        ("tool_hang", "ph"),
        ("pusht", "ph"),
    }
    assert {s.policy for s in specs} == {"lstm_gmm", "ibc", "bet", "diffusion", "diffusion_transformer"}
    # Baselines read delta actions on robomimic, DP absolute ones; Push-T trains everyone on the human demos.
    for s in specs:
        if s.env == "pusht":
            assert (s.dataset, s.obs) == ("human", "keypoints")
        else:
            assert s.obs == "low_dim" and s.dataset.endswith("-delta") == (s.policy in ("lstm_gmm", "ibc", "bet"))


def test_a_part_of_the_paper_grid_is_the_whole_grids_cells(capsys):
    from pathlib import Path

    from dpbench.sweep import Sweep
    from dpbench.sweep.spec import select_cells

    path = Path(__file__).resolve().parents[1] / "sweeps" / "paper_table1_state.yaml"
    specs = Sweep.from_yaml(path).specs()
    # Square ph: 5 policies x 3 seeds, the same specs the whole grid has (so the same cell ids and records)
    square = select_cells(specs, ["square"], None, ["ph"])
    assert len(square) == 15 and all(s in specs for s in square)
    assert {s.dataset for s in square} == {"scripted", "scripted-delta"}
    # DP-C by its alias, on both Transport columns: 2 variants x 3 seeds
    dp = select_cells(specs, ["transport"], ["diffusion_cnn"], None)
    assert (
        len(dp) == 6
        and {s.policy for s in dp} == {"diffusion"}
        and {s.dataset for s in dp}
        == {
            "scripted",
            "scripted-mh",
        }
    )
    from dpbench.errors import DpbenchError

    with pytest.raises(DpbenchError, match="--env squar: the grid has no such cell; its env values: lift, can"):
        select_cells(specs, ["squar"])
    assert main(["sweep", str(path), "--dry-run", "--env", "tool_hang", "--variant", "mh"]) == 2  # ToolHang is ph
    assert "the grid has no cell with all of --env tool_hang --variant mh" in capsys.readouterr().err
    # an empty selection is an error, as in `dpbench table`: before 2026-12-06 `--env ''` meant the whole grid
    assert main(["sweep", str(path), "--dry-run", "--env", ""]) == 2
    assert "--env needs at least one name" in capsys.readouterr().err


def test_sub_grids_merge_their_settings(tmp_path):
    from dpbench.sweep import Sweep

    cfg = tmp_path / "g.yaml"
    grid = {
        "policies": ["bc"],
        "seeds": 1,
        "set": {"train.lr": 0.1},
        "per_policy": {"bc": {"set": {"train.steps": 40}}},
        "grids": [
            {"envs": ["lift"], "dataset": "scripted"},
            {"envs": ["lift"], "dataset": "scripted-mh", "set": {"train.lr": 0.2}},
        ],
    }
    cfg.write_text(yaml.safe_dump(grid))
    specs = Sweep.from_yaml(cfg).specs()
    assert [(s.dataset, s.overrides) for s in specs] == [
        ("scripted", {"train.lr": "0.1", "train.steps": "40"}),
        ("scripted-mh", {"train.lr": "0.2", "train.steps": "40"}),
    ]


def test_rates_prefer_current_uncontended_records():
    old = _timed("diffusion", "lift", "low_dim", 3000.0, [200.0])
    old["protocol"] = 1
    busy = _timed("diffusion", "lift", "low_dim", 2000.0, [200.0])
    busy["wall"]["contention"] = {"train": {"contended": True}}
    clean = _timed("diffusion", "lift", "low_dim", 500.0, [100.0])
    rate = Rates([old, busy, clean], step_ms={}).train_rate("diffusion", "lift", "low_dim", "other")
    assert rate.seconds == 500.0 / 5000  # only the clean record's 0.1 s per step
    # with no clean record, the others still give an estimate: median of 0.6 and 0.4
    assert abs(Rates([old, busy], step_ms={}).train_rate("diffusion", "lift", "low_dim", "x").seconds - 0.5) < 1e-12


def test_rates_prefer_records_from_this_machines_kind_of_cpu():
    # The same cell trains up to 3.9x slower with AVX2 kernels than with AVX-512 ones (docs/measurements.md),
    # so a machine's estimate comes from records of its own kind where a policy/task has any.
    fast = _timed("diffusion", "square", "low_dim", 500.0, [100.0])
    fast["hardware"]["cpu_capability"] = "AVX512"
    slow = _timed("diffusion", "square", "low_dim", 1750.0, [350.0])
    slow["hardware"]["cpu_capability"] = "AVX2"
    slow["wall"]["contention"] = {"train": {"contended": True}}  # the kind outranks a free core
    older = _timed("diffusion", "square", "low_dim", 600.0, [120.0])  # made before records said
    records = [fast, slow, older]
    avx2 = Rates(records, step_ms={}, cpu_capability="AVX2")
    rate = avx2.train_rate("diffusion", "square", "low_dim", "x")
    assert rate.seconds == 1750.0 / 5000 and rate.this_cpu and "this CPU kind" in rate.basis
    assert avx2.episode_rate("diffusion", "square", "low_dim").seconds == 350.0 / 50
    assert (
        Rates(records, step_ms={}, cpu_capability="AVX512").train_rate("diffusion", "square", "low_dim", "x").seconds
        == 0.1
    )
    # another task falls back to the square rates and keeps their kind
    lift = estimate_cell("diffusion", "lift", "low_dim", QUICK, "x", avx2)
    assert lift.this_cpu and abs(lift.train_min - 1750.0 / 60) < 1e-9
    # no record of this kind (or no kind given): every kind pools, clean records first: median of 0.1, 0.12
    for other in (Rates(records, step_ms={}, cpu_capability="ZVECTOR"), Rates(records, step_ms={})):
        rate = other.train_rate("diffusion", "square", "low_dim", "x")
        assert abs(rate.seconds - 0.11) < 1e-12 and not rate.this_cpu and "this CPU kind" not in rate.basis
        assert not estimate_cell("diffusion", "square", "low_dim", QUICK, "x", other).this_cpu


def test_a_cell_resumed_on_another_kind_of_cpu_is_not_this_kinds_evidence():
    # its wall times mix the two kinds' speeds (wall.processes), so it ranks with the records of other kinds
    mixed = _timed("diffusion", "square", "low_dim", 500.0, [100.0])
    mixed["hardware"]["cpu_capability"] = "AVX2"
    mixed["wall"]["processes"] = [
        {"from_step": 0, "cpu_kind": "AVX512 25/17", "device": "cpu"},
        {"from_step": 2000, "cpu_kind": "AVX2", "device": "cpu"},
    ]
    alone = _timed("diffusion", "square", "low_dim", 1750.0, [350.0])
    alone["hardware"]["cpu_capability"] = "AVX2"
    alone["wall"]["processes"] = [{"from_step": 0, "cpu_kind": "AVX2", "device": "cpu"}]
    rate = Rates([mixed, alone], step_ms={}, cpu_capability="AVX2").train_rate("diffusion", "square", "low_dim", "x")
    assert rate.seconds == 1750.0 / 5000 and rate.this_cpu
    rate = Rates([mixed], step_ms={}, cpu_capability="AVX2").train_rate("diffusion", "square", "low_dim", "x")
    assert rate.seconds == 500.0 / 5000 and not rate.this_cpu


def _kind(record: dict, kind: str, chash: str | None = None) -> dict:
    record["hardware"]["cpu_capability"] = kind
    if chash:
        record["config_hash"] = chash
    return record


def test_this_kind_of_cpu_counts_within_each_tier():
    # This config's records come before the task's other configs, whatever their kind: a config can cost as
    # much more per step as a kind of CPU does; within the other configs, this kind comes first.
    exact = _kind(_timed("diffusion", "square", "low_dim", 500.0, [100.0]), "AVX512", "exact")
    other = _kind(_timed("diffusion", "square", "low_dim", 1750.0, [350.0]), "AVX2", "other")
    avx2 = Rates([exact, other], step_ms={}, cpu_capability="AVX2")
    rate = avx2.train_rate("diffusion", "square", "low_dim", "exact")
    assert rate.seconds == 0.1 and not rate.this_cpu and "of this config" in rate.basis
    assert avx2.train_rate("diffusion", "square", "low_dim", "third").seconds == 1750.0 / 5000
    # on another task, the tasks with records of this kind are the ones used: Square's for AVX2, Can's for AVX-512
    can = _kind(_timed("diffusion", "can", "low_dim", 500.0, [100.0]), "AVX512")
    square = _kind(_timed("diffusion", "square", "low_dim", 1750.0, [350.0]), "AVX2")
    for kind, seconds, where in (("AVX2", 0.35, "square/low_dim"), ("AVX512", 0.1, "can/low_dim")):
        rate = Rates([can, square], step_ms={}, cpu_capability=kind).train_rate("diffusion", "lift", "low_dim", "x")
        assert rate.seconds == seconds and rate.this_cpu and rate.basis == f"from {where}, this CPU kind"
        episode = Rates([can, square], step_ms={}, cpu_capability=kind).episode_rate("diffusion", "lift", "low_dim")
        assert episode.this_cpu and where in episode.basis
    # no task has this kind: all of them, and the rate says it is not this kind's
    rate = Rates([can, square], step_ms={}, cpu_capability="AVX512_VNNI").train_rate(
        "diffusion", "lift", "low_dim", "x"
    )
    assert rate.seconds == pytest.approx(0.225) and not rate.this_cpu


def test_dry_run_counts_the_estimates_made_on_this_kind_of_cpu():
    from dpbench.config import config_to_dict
    from dpbench.policies import get_policy_class
    from dpbench.sweep.dryrun import dry_run_report

    cfg = _square_dp_config()
    planned = [_planned(cfg, s) for s in (0, 1)]
    records = [_kind(_timed("diffusion", "square", "low_dim", 1750.0, [350.0]), "AVX2")]
    summary = "\n".join(dry_run_report(planned, records, 2, cpu_capability="AVX2")[-3:])
    assert "2 of the 2 wholly from records made on this machine's kind of CPU (AVX2)" in summary
    assert "from other tasks" not in summary  # Square's own records
    lift = [
        SimpleNamespace(
            **{**vars(planned[0]), "spec": SimpleNamespace(policy="diffusion", env="lift", seed=0, dataset="scripted")}
        )
    ]
    assert "  - 1 of the 1 extrapolate a rate from other tasks (see each basis)" in dry_run_report(lift, records, 2)
    summary = "\n".join(dry_run_report(planned, records, 2, cpu_capability="AVX512"))
    assert "0 of the 2 wholly from records made on this machine's kind of CPU (AVX512)" in summary
    # the cell's own model (its policy config and batch size) on another task and this kind outranks Square's
    # record of another kind: the dry run passes the model to the estimate
    same_model = _kind(_timed("diffusion", "lift", "low_dim", 3500.0, [350.0]), "AVX2")
    same_model["config"] = {**same_model["config"], "policy": config_to_dict(cfg.pcfg)}
    same_model["config"]["train"] = {**same_model["config"]["train"], "batch_size": 64}
    lines = dry_run_report(planned, [_kind(records[0], "AVX512"), same_model], 2, cpu_capability="AVX2")
    assert "train: from lift/low_dim, this model, this CPU kind" in lines[0]
    # a grid of several policies sums each one's cells, costliest first. By hand (5000 steps, 11 x 50 + 200
    # episodes): DP-C 1750 s x 1 / 5000 steps = 0.35 s a step, 350 s / 50 = 7 s an episode: 1750 + 5250 s = 116.7
    # min a cell, 2 cells = 3.9 h; LSTM-GMM 7000 s of training = 1.4 s a step, 700 / 50 = 14 s an episode:
    # 7000 + 10500 s = 4.9 h for its 1 cell
    lstm = SimpleNamespace(**{**vars(cfg), "policy_cls": get_policy_class("lstm_gmm")})
    both = [*planned, SimpleNamespace(**{**vars(planned[0]), "config": lstm})]
    timed = [*records, _kind(_timed("lstm_gmm", "square", "low_dim", 7000.0, [700.0]), "AVX2")]
    lines = dry_run_report(both, timed, 2, cpu_capability="AVX2")
    assert "  - per policy: lstm_gmm 4.9 CPU-h (1 cell), diffusion 3.9 CPU-h (2 cells)" in lines
    assert not any("per policy" in line for line in dry_run_report(planned, records, 2))  # one policy: its total
    # the headline's wall time: 2 x 116.7 CPU-minutes on 2 workers is 1.9 h; one worker given both cores' threads
    # finishes sooner than its 3.9 h at one thread, so that figure is said to be an upper bound
    head = dry_run_report(planned, records, 2)[-2]
    assert "3.9 CPU-hours" in head and "2 worker(s), one cell each at a time, about 1.9 h of wall time" in head
    assert "upper bound" not in head
    head = dry_run_report(planned, records, 1, threads_per_cell=2)[-2]
    assert "1 worker(s), one cell each at a time, about 3.9 h" in head and "gives its cell 2 threads" in head
    assert "less than 2x: between 1.9 h and that upper bound" in head


def test_a_plugin_policys_records_price_its_cells():
    """A policy named by ``module:Class`` is recorded under that reference (``records.record_policy``), not its
    class's ``name``: the dry run looks its rates up the same way. Before 2026-12-06 it looked up the class name, so
    a plugin's cells stayed "? [train: no record]" however many of its records the out dir held."""
    from dpbench.sweep.dryrun import dry_run_report

    cfg = _square_dp_config()
    plugin = SimpleNamespace(**{**vars(cfg), "policy_cls": type("Mine", (), {"name": "mine"})})
    cell = _planned(plugin, 0)
    cell.spec.policy = "my_module:Mine"
    record = _timed("my_module:Mine", "square", "low_dim", 1750.0, [350.0])
    line = dry_run_report([cell], [record], 2)[0]
    # by hand, as in the test above: 1750 s / 5000 steps x 5000 + 350 / 50 x (11 x 50 + 200) s = 116.7 min
    assert line.startswith("  new     ~117 min (29 + 88)") and "no record" not in line, line


def test_threads_beyond_the_cores_do_not_shorten_the_dry_runs_wall_time(monkeypatch, capsys):
    """`--workers 2 --threads 2` on 2 cores puts 4 threads on 2 cores: the wall time's lower bound is the cores'
    (the CPU-hours / 2), not a quarter of the CPU-hours, which a newcomer read in the dry run before 2026-12-06."""
    from pathlib import Path

    import dpbench.host as host
    from dpbench.host import THREADS_ENV

    monkeypatch.setattr(host, "usable_cores", lambda: 2)
    monkeypatch.setenv(THREADS_ENV, "1")  # restored after the test: --threads sets it for the process
    path = Path(__file__).resolve().parents[1] / "sweeps" / "paper_table1_state.yaml"
    part = ["--env", "lift", "--policy", "diffusion", "--variant", "ph"]
    assert main(["sweep", str(path), "--dry-run", "--workers", "2", "--threads", "2", *part]) == 0
    out = capsys.readouterr().out
    assert "2 worker(s) x 2 torch threads on 2 usable core(s)" in out and "counts 1 a cell" in out
    head = next(line for line in out.splitlines() if line.startswith("[dpbench] estimate:"))
    assert "2 worker(s), one cell each at a time" in head and "gives its cell" not in head
    # one worker may use both cores' threads: the lower bound is half the one-thread figure
    assert main(["sweep", str(path), "--dry-run", "--workers", "1", "--threads", "2", *part]) == 0
    out = capsys.readouterr().out
    assert "usable core(s)" not in out and "gives its cell 2 threads, which shorten it by less than 2x" in out


def test_a_new_cell_whose_record_was_trained_on_other_demos_says_so(tmp_path):
    # ToolHang's case: the out dir holds seed 0's record, trained on a collection of 109,662 steps; this machine's
    # collection of the same recipe has 109,604, so the cell is new and its line and the summary say why.
    from dpbench.config import build_configs
    from dpbench.policies import get_policy_class
    from dpbench.sweep.dryrun import dry_run_report

    pcfg = build_configs(get_policy_class("diffusion"), "quick", task="tool_hang")[0]
    tcfg = SimpleNamespace(**vars(QUICK), batch_size=64)
    cfg = SimpleNamespace(policy_cls=get_policy_class("diffusion"), obs="low_dim", tcfg=tcfg, chash="h", pcfg=pcfg)
    ours = "tool_hang-low_dim__diffusion__scripted-4567e4b0__quick-h__seed{}"
    cells = [
        SimpleNamespace(
            cell_id=ours.format(s),
            record_path=tmp_path / "records" / f"{ours.format(s)}.json",  # absent: not done
            lock_dir=tmp_path / "work" / str(s),
            workdir=tmp_path / "work" / str(s),
            variant="ph",
            data=SimpleNamespace(store=SimpleNamespace(n_episodes=200, n_steps=109_604)),
        )
        for s in (0, 1)
    ]
    planned = [
        SimpleNamespace(
            spec=SimpleNamespace(policy="diffusion", env="tool_hang", seed=s, dataset="scripted"),
            config=cfg,
            blocked=False,
            cell=cells[s],
            missing=None,
            problem="",
            action_mode="abs",
        )
        for s in (0, 1)
    ]
    theirs = _timed("diffusion", "tool_hang", "low_dim", 1750.0, [350.0])
    theirs["cell_id"] = "tool_hang-low_dim__diffusion__scripted-374aff22__quick-h__seed0"
    theirs["dataset"] = {"kind": "scripted", "hash": "374aff22", "episodes": 200, "steps": 109_662}
    lines = dry_run_report(planned, [theirs], 2, out_records=[theirs])
    assert lines[0].startswith("  new") and lines[0].endswith(
        "[a record of this cell, scripted-374aff22, trained on other demos: 200 episodes, 109,662 steps; "
        "these 200, 109,604]"
    )
    assert lines[1].startswith("  new") and "other demos" not in lines[1]  # seed 1 has no record at all
    assert "2 cell(s) to run" in lines[2] and lines[-1].startswith("  - 1 of the cells to run have a record trained")


def test_sub_grids_merge_per_policy_deeply_and_keep_cells_that_differ(tmp_path):
    from dpbench.errors import DpbenchError
    from dpbench.sweep import Sweep

    cfg = tmp_path / "g.yaml"
    grid = {
        "policies": ["bc", "lstm_gmm"],
        "seeds": 1,
        "per_policy": {"bc": {"set": {"train.steps": 1000}}, "lstm_gmm": {"dataset": "scripted-delta"}},
        "grids": [
            {"envs": ["lift"], "policies": ["bc"], "per_policy": {"bc": {"set": {"train.lr": 0.001}}}},
            {"envs": ["lift"], "policies": ["bc"], "set": {"train.steps": 6000}},
            {"envs": ["lift"], "policies": ["bc"], "preset": "smoke"},
        ],
    }
    cfg.write_text(yaml.safe_dump(grid))
    sweep = Sweep.from_yaml(cfg)
    sweep.out = tmp_path / "elsewhere"  # what --out does: every sub-grid's cells follow
    specs = sweep.specs()
    assert {s.out for s in specs} == {tmp_path / "elsewhere"}
    assert [s.preset for s in specs] == ["quick", "quick", "smoke"]  # cells that differ only in settings: all kept
    specs = specs[:2]
    # top-level per_policy reaches a sub-grid without lstm_gmm, and its set merges with the sub-grid's own
    assert [s.overrides for s in specs] == [
        {"train.steps": "1000", "train.lr": "0.001"},
        {"train.steps": "1000"},  # per_policy's set applies over the sub-grid's set, as in a single grid
    ]
    cfg.write_text("policies: [bc]\ngrids:\n  - {envs: [lift], set: {a: 1}\n")
    with pytest.raises(DpbenchError, match="not valid YAML at line"):
        Sweep.from_yaml(cfg)


def test_a_cell_another_process_trains_now_is_running_not_resume(tmp_path, monkeypatch, capsys):
    from dpbench.sweep.dryrun import _busy
    from dpbench.sweep.lock import CellLock

    work = tmp_path / "cell"
    work.mkdir()
    assert _busy(work) is None and _busy(tmp_path / "missing") is None
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from dpbench.sweep.lock import CellLock; import time; CellLock({str(work)!r}).acquire(); time.sleep(300)",
        ]
    )
    try:  # generous: the holder's imports took over 20 s on 2 cores that two training cells kept busy
        deadline = time.monotonic() + 240
        while _busy(work) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _busy(work) is not None
        written = (work / "lock").read_text()
        assert _busy(work) is not None and (work / "lock").read_text() == written  # the probe writes nothing
    finally:
        holder.kill()
        holder.wait()
    assert _busy(work) is None and (work / "lock").read_text() == written
    assert CellLock(work).acquire()  # and free again once the holder is gone


def test_skip_blocked_keeps_the_cells_that_can_run(tmp_path, tiny_pusht_hdf5):
    from dpbench.errors import DpbenchError
    from dpbench.runner import CellSpec
    from dpbench.sweep.cells import prepare_all

    specs = [
        CellSpec(policy="bc", env="pusht", seed=0, preset="smoke", dataset=str(tiny_pusht_hdf5), out=tmp_path),
        CellSpec(
            policy="bc", env="tool_hang", seed=0, preset="smoke", obs="low_dim", dataset="scripted-mh", out=tmp_path
        ),
    ]
    with pytest.raises(DpbenchError, match="tool_hang has ph demonstrations only"):
        prepare_all(specs)  # by default the whole grid is refused
    skipped: list[str] = []
    cells = prepare_all(specs, skipped)
    assert [c.spec.env for c in cells] == ["pusht"]
    assert len(skipped) == 1 and skipped[0].startswith(
        "bc tool_hang/low_dim seed 0: tool_hang has ph demonstrations only"
    )
    with pytest.raises(DpbenchError, match="unknown env"):  # a typo is never skipped
        prepare_all([CellSpec(policy="bc", env="pushtt", seed=0, out=tmp_path)], [])
    bad = CellSpec(
        policy="bc",
        env="tool_hang",
        seed=0,
        obs="low_dim",
        dataset="scripted-mh",
        overrides={"train.stepz": "1"},
        out=tmp_path,
    )
    with pytest.raises(DpbenchError, match="stepz"):  # nor is a bad override, even on a blocked task
        prepare_all([specs[0], bad], [])


def test_this_kind_of_cpu_with_the_same_model_outranks_the_task_for_training():
    # ToolHang has a record of this config from another kind of CPU (0.1 s per step, 2 s per episode); Square has
    # one of the same model (policy config and batch) from this kind (0.35 s, 7 s per episode). A model's step
    # costs about the same across low-dim tasks on one kind, kinds differ up to ~4x (docs/measurements.md): for
    # training, Square's wins. An episode's length follows the policy's success on its task: ToolHang's own.
    from dpbench.sweep.estimate import cost_key

    elsewhere = _kind(_timed("diffusion", "tool_hang", "low_dim", 500.0, [100.0]), "AVX512", "th")
    here = _kind(_timed("diffusion", "square", "low_dim", 1750.0, [350.0]), "AVX2", "sq")
    model = cost_key(here["config"]["policy"], here["config"]["train"].get("batch_size"))
    assert model == cost_key(elsewhere["config"]["policy"], elsewhere["config"]["train"].get("batch_size"))
    rates = Rates([elsewhere, here], step_ms={}, cpu_capability="AVX2")
    step = rates.train_rate("diffusion", "tool_hang", "low_dim", "th", model)
    assert step.seconds == 1750.0 / 5000 and step.this_cpu
    assert step.basis == "from square/low_dim, this model, this CPU kind"
    assert rates.episode_rate("diffusion", "tool_hang", "low_dim", "abs").seconds == 2.0
    est = estimate_cell("diffusion", "tool_hang", "low_dim", QUICK, "th", rates, "abs", "ph", model)
    assert est.train_min == pytest.approx(1750.0 / 60) and est.eval_min == pytest.approx(750 * 2.0 / 60)
    # another model (or none named): the tiers as before, this config's record first whatever its kind
    other = cost_key({**here["config"]["policy"], "down_dims": [1]}, 64)
    for cost in (other, None):
        assert rates.train_rate("diffusion", "tool_hang", "low_dim", "th", cost).seconds == 0.1
    # the task's own records of this kind and model come before other tasks'
    own = _kind(_timed("diffusion", "tool_hang", "low_dim", 1500.0, [500.0]), "AVX2", "own")
    rates = Rates([elsewhere, here, own], step_ms={}, cpu_capability="AVX2")
    assert rates.train_rate("diffusion", "tool_hang", "low_dim", "th", model).seconds == pytest.approx(0.3)
    # ... at one torch thread, a sweep cell's: the task's own record at 2 threads (1500 s x 2 / 5000 = 0.6 CPU-s a
    # step) yields to Square's one-thread 0.35, and is read only where no one-thread record of the model is left
    two = _kind(_timed("diffusion", "tool_hang", "low_dim", 1500.0, [500.0], threads=2), "AVX2", "own")
    rates = Rates([elsewhere, here, two], step_ms={}, cpu_capability="AVX2")
    step = rates.train_rate("diffusion", "tool_hang", "low_dim", "th", model)
    assert step.seconds == pytest.approx(0.35) and step.basis == "from square/low_dim, this model, this CPU kind"
    step = Rates([elsewhere, two], step_ms={}, cpu_capability="AVX2").train_rate(
        "diffusion", "tool_hang", "low_dim", "th", model
    )
    assert step.seconds == pytest.approx(0.6) and "several threads" in step.basis


def test_the_this_kind_tier_stays_within_one_obs_mode_and_off_images():
    # Push-T keypoints and robomimic low_dim can share a model config; image tasks differ by their cameras.
    from dpbench.sweep.estimate import cost_key

    pusht = _kind(_timed("diffusion", "pusht", "keypoints", 1750.0, [350.0]), "AVX2")
    model = cost_key(pusht["config"]["policy"], pusht["config"]["train"].get("batch_size"))
    square = _kind(_timed("diffusion", "square", "low_dim", 500.0, [100.0]), "AVX512", "sq")
    rates = Rates([pusht, square], step_ms={}, cpu_capability="AVX2")
    assert rates.train_rate("diffusion", "square", "low_dim", "sq", model).seconds == 0.1  # Square's own, not Push-T
    images = [
        _kind(_timed("diffusion", "pusht", "image", 1750.0, [350.0]), "AVX2"),
        _kind(_timed("diffusion", "lift", "image", 500.0, [100.0]), "AVX512", "li"),
    ]
    model = cost_key(images[0]["config"]["policy"], images[0]["config"]["train"].get("batch_size"))
    rate = Rates(images, step_ms={}, cpu_capability="AVX2").train_rate("diffusion", "lift", "image", "li", model)
    assert rate.seconds == 0.1 and "of this config" in rate.basis


def test_expected_success_is_the_papers_avg_last_10_where_it_reports_success():
    # chi2023_table1_state.csv: DP-C on Square ph, max 1.00 / avg-last-10 0.93; Push-T reports coverage.
    assert expected_success("diffusion", "square", "low_dim") == pytest.approx(0.93)
    assert expected_success("diffusion", "pusht", "keypoints") is None
    assert expected_success("no_such_policy", "square", "low_dim") is None


def test_one_simd_level_on_two_cpu_generations_is_two_kinds():
    # A Zen 4 (family/model 25/17) and a Zen 5 (26/2) both run torch's AVX-512 kernels, yet one ToolHang
    # LSTM-GMM step took 2.0x as long on the Zen 4 (docs/measurements.md): the family tells them apart.
    zen5 = _kind(_timed("diffusion", "square", "low_dim", 500.0, [100.0]), "AVX512")
    zen5["hardware"]["cpu_family"] = "26/2"
    zen4 = _kind(_timed("diffusion", "square", "low_dim", 1000.0, [160.0]), "AVX512")
    zen4["hardware"]["cpu_family"] = "25/17"
    on_zen4 = Rates([zen5, zen4], step_ms={}, cpu_capability="AVX512", cpu_family="25/17")
    rate = on_zen4.train_rate("diffusion", "square", "low_dim", "x")
    assert rate.seconds == 1000.0 / 5000 and rate.this_cpu
    assert on_zen4.episode_rate("diffusion", "square", "low_dim").seconds == 160.0 / 50
    # only the other generation's record: pooled, and not called this kind's
    only_zen5 = Rates([zen5], step_ms={}, cpu_capability="AVX512", cpu_family="25/17")
    assert not only_zen5.train_rate("diffusion", "square", "low_dim", "x").this_cpu
    # a record made before records named the family goes by the SIMD level, as before; so does a machine
    # that cannot say its family
    older = _kind(_timed("diffusion", "square", "low_dim", 500.0, [100.0]), "AVX512")
    by_simd = Rates([older], step_ms={}, cpu_capability="AVX512", cpu_family="25/17").train_rate(
        "diffusion", "square", "low_dim", "x"
    )
    # ... and its basis says so: "this CPU kind" on a dry-run line read as a match of family/model too
    assert by_simd.this_cpu and "this CPU's SIMD level (family/model unrecorded)" in by_simd.basis
    assert "this CPU kind" not in by_simd.basis and "this CPU kind" in rate.basis
    # beside a record that names this family, the one that does not is left out (a Zen 4 step 0.2 s, a step of
    # unknown family 0.1 s: the Zen 4 machine prices 0.2, not their median 0.15)
    both = Rates([zen4, older], step_ms={}, cpu_capability="AVX512", cpu_family="25/17")
    exact = both.train_rate("diffusion", "square", "low_dim", "x")
    assert exact.seconds == 1000.0 / 5000 and exact.basis.endswith("this CPU kind")
    assert Rates([zen5], step_ms={}, cpu_capability="AVX512").train_rate("diffusion", "square", "low_dim", "x").this_cpu


def test_a_cells_printed_total_is_the_sum_of_its_printed_parts():
    from dpbench.sweep.dryrun import cost_text

    # 29.6 + 5.8 = 35.4 minutes printed as "~35 min (30 + 6)" read as an arithmetic slip: 30 + 6 is 36
    assert cost_text(29.6, 5.8) == ("~36 min", "(30 + 6)")
    assert cost_text(45.0, 87.0) == ("~2.2 h", "(45 + 87)")  # hours: 132 / 60
    assert cost_text(67.6, 108.6) == ("~3.0 h", "(68 + 109)")  # 177 / 60 = 2.95, not 176.2 / 60 = 2.94 ("~2.9")
    assert cost_text(0.2, 0.3) == ("~0 min", "(0 + 0)")


def test_a_resumed_cell_is_priced_from_its_checkpoints_step(tmp_path):
    # Before 2026-12-06 a resumable cell was priced whole: Square mh IBC stopped at step 13,500 of 22,500 read as
    # a whole cell. Its checkpoint, as the training loop writes it, now sets what is left.
    import numpy as np
    import torch

    from dpbench.sweep.dryrun import dry_run_report
    from dpbench.train import RESUME_FILE, TrainState, _save_resume, checkpoint_progress

    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    work = tmp_path / "cell"
    work.mkdir()
    _save_resume(work / RESUME_FILE, model, optimizer, scheduler, None, np.random.default_rng(0), TrainState(3000))
    assert checkpoint_progress(work / RESUME_FILE) == (3000, False)
    assert checkpoint_progress(tmp_path / "missing.pt") is None

    planned = [_planned(_square_dp_config(), 0, _square_cell(work))]
    records = [_timed("diffusion", "square", "low_dim", 1750.0, [350.0])]
    # By hand: 1750 s / 5000 steps = 0.35 s a step and 350 s / 50 = 7 s an episode (one thread). From step 3000:
    # 2000 steps = 700 s = 11.7 min; 8 evaluations x 50 + 200 held-out = 600 episodes = 4200 s = 70 min.
    line = dry_run_report(planned, records, 2)[0]
    assert line.startswith("  resume  ~82 min  (12 + 70)") and "[from step 3,000 of 5,000]" in line, line
    # Written just before step 3000's evaluation (a stop during it): that evaluation is priced too,
    # 9 x 50 + 200 = 650 episodes = 4550 s = 75.8 min, and the training the same 11.7 min.
    state = TrainState(3000, eval_pending=True)
    _save_resume(work / RESUME_FILE, model, optimizer, scheduler, None, np.random.default_rng(0), state)
    assert checkpoint_progress(work / RESUME_FILE) == (3000, True)
    line = dry_run_report(planned, records, 2)[0]
    assert line.startswith("  resume  ~88 min  (12 + 76)"), line
    assert "[from step 3,000 of 5,000, its evaluation first]" in line, line
    # An unreadable checkpoint: still a resume (the run will say why it cannot), priced as the whole cell:
    # 5000 x 0.35 = 1750 s = 29.2 min; (11 x 50 + 200) x 7 = 5250 s = 87.5 min.
    (work / RESUME_FILE).write_bytes(b"not a checkpoint")
    assert checkpoint_progress(work / RESUME_FILE) is None
    line = dry_run_report(planned, records, 2)[0]
    assert line.startswith("  resume  ~117 min (29 + 88)") and "cannot be read: priced whole" in line, line


def test_a_cell_running_elsewhere_is_named_and_left_out_of_the_total(tmp_path, monkeypatch):
    import dpbench.sweep.dryrun as dryrun

    cells = [_square_cell(tmp_path / str(s), s) for s in (0, 1)]
    planned = [_planned(_square_dp_config(), s, cell) for s, cell in enumerate(cells)]
    monkeypatch.setattr(dryrun, "_busy", lambda lock_dir: "pid 7 on vm" if lock_dir == cells[0].lock_dir else None)
    lines = dryrun.dry_run_report(planned, [_timed("diffusion", "square", "low_dim", 1750.0, [350.0])], 2)
    assert lines[0].startswith("  running") and "[held by pid 7 on vm]" in lines[0]
    # only seed 1 is counted: 29.2 + 87.5 min (the test above) = 1.9 CPU-hours
    assert "1 cell(s) to run; 1 with a measured rate take 1.9 CPU-hours" in lines[2], lines[2]
    assert "  - 1 cell(s) running in another process now: not counted" in lines


def test_a_record_naming_this_cpus_family_outranks_one_matched_by_simd_alone_whatever_its_threads():
    # The Zen 3 (AVX2, 25/1) of 2026-12-05 priced ToolHang DP-C's training at 273 CPU-min from a one-thread Square
    # record of an AVX2 machine that named no family (0.364 CPU-s a step), while its own ToolHang records (2
    # threads, family 25/1) measured 0.26, and their one-thread stretch (steps 22,500-27,000) 0.25-0.26 s a step.
    # One SIMD level spans CPU generations 2-4x apart; a second thread costs well under 2x: the named kind wins.
    from dpbench.sweep.estimate import cost_key

    older = _kind(_timed("diffusion", "square", "low_dim", 1820.0, [350.0]), "AVX2", "sq")  # no cpu_family
    zen3 = _kind(_timed("diffusion", "tool_hang", "low_dim", 650.0, [500.0], threads=2), "AVX2", "th")
    zen3["hardware"]["cpu_family"] = "25/1"
    model = cost_key(older["config"]["policy"], older["config"]["train"].get("batch_size"))
    rates = Rates([older, zen3], step_ms={}, cpu_capability="AVX2", cpu_family="25/1")
    step = rates.train_rate("diffusion", "transport", "low_dim", "tr", model)
    # by hand: 650 s x 2 threads / 5000 steps = 0.26 CPU-s a step, not 1820 / 5000 = 0.364
    assert step.seconds == pytest.approx(0.26) and step.this_cpu
    assert step.basis == "from tool_hang/low_dim, this model, several threads, this CPU kind"
    # the task's own SIMD-alone record yields too; alone, it is read as before (and says how it matched)
    own_older = _kind(_timed("diffusion", "transport", "low_dim", 1820.0, [350.0]), "AVX2", "tr")
    rates = Rates([own_older, zen3], step_ms={}, cpu_capability="AVX2", cpu_family="25/1")
    assert rates.train_rate("diffusion", "transport", "low_dim", "tr", model).seconds == pytest.approx(0.26)
    alone = Rates([older], step_ms={}, cpu_capability="AVX2", cpu_family="25/1")
    step = alone.train_rate("diffusion", "transport", "low_dim", "tr", model)
    assert step.seconds == pytest.approx(0.364) and "SIMD level (family/model unrecorded)" in step.basis


def test_a_done_cell_shows_the_wall_time_its_record_measured(tmp_path):
    # The grid's measured wall time per cell belongs beside its estimate: a done line gives the record's wall
    # minutes (training + evaluation), and the summary their sum. Seed 0 trained 7,860 s and evaluated 2 x 4,500 s
    # plus a held-out evaluation of 2,580 s: 131 + (9,000 + 2,580) / 60 = 131 + 193 = 324 min, printed 5.4 h.
    from dpbench.sweep.dryrun import dry_run_report

    cfg = _square_dp_config()
    done = _timed("diffusion", "square", "low_dim", 7860.0, [4500.0, 4500.0])
    done["final"] = {"heldout": {"wall_s": 2580.0}}
    done["wall"]["total_s"] = 7860.0 + 9000.0  # a resumed run's last process: less than its parts
    cells = [_square_cell(tmp_path / str(s), seed=s) for s in (0, 1)]
    done["cell_id"] = cells[0].cell_id
    cells[0].record_path = tmp_path / "records" / f"{cells[0].cell_id}.json"
    cells[0].record_path.parent.mkdir()
    cells[0].record_path.write_text("{}")  # exists: the cell is done (its content comes from out_records)
    lines = dry_run_report([_planned(cfg, s, cells[s]) for s in (0, 1)], [done], 2, out_records=[done])
    assert lines[0] == f"  done    5.4 h    (131 + 193)  {cells[0].cell_id}"
    assert lines[1].startswith("  new     ~")
    assert "  - 1 done or recorded cell(s) took 5.4 h of wall time (training 2.2, evaluation 3.2)" in "\n".join(lines)
