"""End-to-end: `dpbench run` on the smoke preset, resume, determinism and bad input."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from dpbench.cli import main
from dpbench.contract import check_actions, check_step_actions
from dpbench.diffusion.policy import DiffusionUnetPolicy
from dpbench.errors import DpbenchError
from dpbench.metrics import wilson_ci
from dpbench.tasks import get_task


def _run(tmp: Path, dataset: Path, *extra: str) -> int:
    return main(
        [
            "run",
            "--policy",
            "diffusion",
            "--env",
            "pusht",
            "--preset",
            "smoke",
            "--dataset",
            str(dataset),
            "--out",
            str(tmp),
            "--quiet",
            *extra,
        ]
    )


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]


def test_smoke_run_writes_records_and_is_deterministic(tmp_path, tiny_pusht_hdf5, capsys):
    # one worker: both runs then train with the same torch thread count (a pool splits the cores, and CPU
    # float results depend on the thread count; records carry it in hardware.torch_threads)
    assert _run(tmp_path / "a", tiny_pusht_hdf5, "--seeds", "2", "--workers", "1") == 0
    out = capsys.readouterr().out
    assert "paper (Chi et al. 2023)" in out and "| dpbench |" in out
    recs = _records(tmp_path / "a")
    assert [r["seed"] for r in recs] == [0, 1]
    r = recs[0]
    assert r["dataset"]["kind"] == "path" and len(r["dataset"]["hash"]) == 16
    assert [h["step"] for h in r["history"]] == [3, 6]
    assert r["final"]["max"] == max(h["score"] for h in r["history"])
    assert r["versions"]["torch"] and r["hardware"]["cores"] and r["date"]
    contention = r["wall"]["contention"]
    assert set(contention) == {"train", "eval"} and {"others_cores", "loadavg_1min", "contended"} <= set(
        contention["train"]
    )
    assert (tmp_path / "a" / r["checkpoint"]).exists() and not r["checkpoint"].startswith("/")
    # same seed again, elsewhere: identical metrics
    assert _run(tmp_path / "b", tiny_pusht_hdf5, "--seeds", "1") == 0
    again = _records(tmp_path / "b")[0]
    assert again["history"] == [
        dict(
            h,
            eval_seconds=h2["eval_seconds"],
            train_seconds=h2["train_seconds"],
            chunk_latency_ms=h2["chunk_latency_ms"],
        )
        for h, h2 in zip(r["history"], again["history"])
    ]
    assert again["final"]["last_eval"]["episode_scores"] == r["final"]["last_eval"]["episode_scores"]


def test_a_run_piped_into_a_log_gets_its_lines_not_bar_redraws(tmp_path, tiny_pusht_hdf5, capsys):
    # without --quiet, as a Slurm or nohup job runs: stderr is a file, not a terminal (capsys's is not a tty).
    # tqdm would redraw its bar there ~10 times a second, each a carriage return (and a cursor-up escape for a
    # nested bar): megabytes of log an hour. The evaluation lines written through the bar must still print.
    args = ["run", "--policy", "diffusion", "--env", "pusht", "--preset", "smoke"]
    assert main([*args, "--dataset", str(tiny_pusht_hdf5), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr()
    assert "step 3: score" in printed.out and "step 6: score" in printed.out
    for text in printed:
        assert "\r" not in text and "\x1b[" not in text


def test_rerun_skips_finished_seeds_and_resumes_unfinished(tmp_path, tiny_pusht_hdf5, monkeypatch):
    out = tmp_path / "r"
    assert _run(out, tiny_pusht_hdf5, "--seeds", "1") == 0
    first = _records(out)[0]
    # simulate a run killed after its last checkpoint (in its held-out evaluation): keep the work dir, drop the record
    record = next((out / "records").glob("*.json"))
    record.unlink()
    import dpbench.train as train_mod

    state_file = out / "work" / first["cell_id"] / train_mod.RESUME_FILE
    assert state_file.exists()
    import dpbench.runner as runner

    calls: list[int] = []  # the evaluations the resumed process runs, by their episode counts

    def counted(*args, **kwargs):
        calls.append(kwargs["n_episodes"])
        return real_evaluate(*args, **kwargs)

    real_evaluate = runner.evaluate
    monkeypatch.setattr(runner, "evaluate", counted)
    assert _run(out, tiny_pusht_hdf5, "--seeds", "1") == 0
    # resumed from the last step's checkpoint: no periodic evaluation runs again (the dry run prices none,
    # estimate.evaluation_count; the held-out one, which was stopped, does); the record's last evaluation is the
    # one the stopped process saved
    assert calls == []
    resumed = _records(out)[0]
    assert resumed["final"]["last_eval"] == first["final"]["last_eval"]
    assert resumed["wall"]["eval_s"] == pytest.approx(
        sum(h["eval_seconds"] for h in resumed["history"]) + resumed["final"]["heldout"]["wall_s"], abs=0.1
    )
    # a saved result that is not a whole evaluation's (an older dpbench's fields; here only its step and score)
    # is not trusted: the last step is evaluated again, once, as in a work dir without the file
    next((out / "records").glob("*.json")).unlink()
    saved = state_file.parent / runner.LAST_EVAL_FILE
    saved.write_text(
        json.dumps({"step": first["history"][-1]["step"], "result": {"score": first["final"]["last_eval"]["score"]}})
    )
    assert _run(out, tiny_pusht_hdf5, "--seeds", "1") == 0
    assert calls == [first["config"]["train"]["eval_episodes"]]
    again = _records(out)[0]["final"]["last_eval"]
    assert (again["episode_scores"], again["episode_lengths"]) == (
        first["final"]["last_eval"]["episode_scores"],
        first["final"]["last_eval"]["episode_lengths"],
    )
    resumed = _records(out)[0]
    assert resumed["history"][-1]["score"] == first["history"][-1]["score"]
    # its wall times count the stopped process's training and evaluations too
    wall = resumed["wall"]
    assert wall["train_s"] == pytest.approx(first["wall"]["train_s"], abs=0.2)
    assert wall["eval_s"] >= sum(h["eval_seconds"] for h in resumed["history"]) - 0.1
    assert wall["total_s"] >= wall["train_s"] + wall["eval_s"] - 0.2
    # a finished record is reused as is
    assert _run(out, tiny_pusht_hdf5, "--seeds", "1") == 0
    assert _records(out)[0]["date"] == resumed["date"]


def test_a_run_stopped_in_an_evaluation_records_what_an_uninterrupted_run_records(
    tmp_path, tiny_pusht_hdf5, monkeypatch
):
    """`dpbench run` stopped (Ctrl-C or SIGTERM) inside a checkpoint step's evaluation resumes from the checkpoint
    written just before it: the rerun runs that evaluation first, trains only the steps after it, and writes the
    record an uninterrupted run writes. The training loop's own test (test_protocol) kills `train`; this one goes
    through the runner, its saved last evaluation and its record."""
    import dpbench.runner as runner
    from dpbench.train import RESUME_FILE, checkpoint_progress

    assert _run(tmp_path / "whole", tiny_pusht_hdf5, "--seeds", "1", "--workers", "1") == 0
    (whole,) = _records(tmp_path / "whole")
    assert [h["step"] for h in whole["history"]] == [3, 6]  # the smoke preset: checkpoints at both
    real_evaluate, calls = runner.evaluate, []

    def stopped_in_the_first(*args, **kwargs):
        calls.append(kwargs["n_episodes"])
        if len(calls) == 1:
            raise KeyboardInterrupt  # what the CLI raises on SIGTERM, mid-evaluation
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(runner, "evaluate", stopped_in_the_first)
    out = tmp_path / "stopped"
    assert _run(out, tiny_pusht_hdf5, "--seeds", "1", "--workers", "1") == 130
    assert _records(out) == []
    workdir = out / "work" / whole["cell_id"]
    assert checkpoint_progress(workdir / RESUME_FILE) == (3, True)

    calls.clear()
    calls.append(-1)  # the resumed process is not stopped
    assert _run(out, tiny_pusht_hdf5, "--seeds", "1", "--workers", "1") == 0
    episodes = whole["config"]["train"]["eval_episodes"]
    assert calls[1:] == [episodes, episodes]  # steps 3 and 6, once each; the last one's result is the record's
    (rec,) = _records(out)
    timing = {"eval_seconds", "train_seconds", "chunk_latency_ms"}
    assert [{k: v for k, v in h.items() if k not in timing} for h in rec["history"]] == [
        {k: v for k, v in h.items() if k not in timing} for h in whole["history"]
    ]
    assert rec["final"]["last_eval"]["episode_scores"] == whole["final"]["last_eval"]["episode_scores"]
    for key in ("max", "avg_last10"):
        assert rec["final"][key] == whole["final"][key]
    held, held_whole = rec["final"]["heldout"], whole["final"]["heldout"]
    assert {k: held[k] for k in ("step", "episode_scores")} == {k: held_whole[k] for k in ("step", "episode_scores")}
    # both processes are named, the second from the step its checkpoint held
    assert [p["from_step"] for p in rec["wall"]["processes"]] == [0, 3]
    assert rec["wall"]["eval_s"] == pytest.approx(
        sum(h["eval_seconds"] for h in rec["history"]) + held["wall_s"], abs=0.1
    )


def test_a_resumed_cells_contention_covers_its_stopped_process(tmp_path, tiny_pusht_hdf5, monkeypatch):
    """A cell stopped and resumed keeps what its first process measured: other jobs that crowded the cores
    then still mark the record contended, though none ran while it resumed. Before 2026-12-02 the record
    said only what the last process saw."""
    import dpbench.contention as contention
    import dpbench.host as host

    cores = os.cpu_count() or 1

    def crowded() -> tuple[float, float]:  # (all CPUs' busy s, ours): others keep 10x the machine's cores busy
        t = time.perf_counter()
        return (10 * cores + 1) * t, t

    def alone() -> tuple[float, float]:  # nobody but us
        t = time.perf_counter()
        return t, t

    out = tmp_path / "r"
    monkeypatch.setattr(contention, "_cpu_times", crowded)
    assert _run(out, tiny_pusht_hdf5, "--seeds", "1") == 0
    first = _records(out)[0]["wall"]["contention"]
    assert first["train"]["contended"] is True and first["eval"]["contended"] is True
    kind = host.cpu_kind({"cpu_capability": host.cpu_capability(), "cpu_family": host.cpu_family()})
    assert _records(out)[0]["wall"]["processes"] == [{"from_step": 0, "cpu_kind": kind, "device": "cpu"}]
    assert first["train"]["others_cores"] == pytest.approx(10 * cores, rel=1e-3)
    next((out / "records").glob("*.json")).unlink()  # killed after its last checkpoint

    monkeypatch.setattr(contention, "_cpu_times", alone)
    assert _run(out, tiny_pusht_hdf5, "--seeds", "1") == 0
    both = _records(out)[0]["wall"]["contention"]
    # the record names both processes and the step each began at: had the second run on another kind of CPU,
    # the record would say its times mix kinds
    steps = _records(out)[0]["config"]["train"]["steps"]
    assert [p["from_step"] for p in _records(out)[0]["wall"]["processes"]] == [0, steps]
    for phase in ("train", "eval"):
        assert both[phase]["contended"] is True, both
        # the first process's crowd averaged over both processes' wall time: below 10x, above the threshold
        assert cores < both[phase]["others_cores"] <= 10 * cores + 1e-3, both


def test_checkpoint_eval_and_wrong_env(tmp_path, tiny_pusht_hdf5, capsys):
    assert _run(tmp_path, tiny_pusht_hdf5, "--seeds", "1") == 0
    ckpt = str(tmp_path / _records(tmp_path)[0]["checkpoint"])
    capsys.readouterr()
    assert main(["eval", ckpt, "--env", "pusht", "--episodes", "1", "--device", "cpu"]) == 0  # one: the path
    out = capsys.readouterr().out
    assert "success rate" in out
    # the output names what it scored: Push-T's test seeds start at 100000 (the original's test_start_seed)
    says = f"diffusion ({ckpt}, step 6) on pusht/keypoints: test seeds 100000-100000, sampling seed 0"
    assert out.splitlines()[0] == says
    # a device this machine lacks or torch cannot parse: one line, before any episode
    for device, says in (("gpu0", "unknown --device 'gpu0'"), ("cuda", "sees no CUDA device; use --device cpu")):
        if device == "cuda" and torch.cuda.is_available():
            continue
        assert main(["eval", ckpt, "--episodes", "2", "--device", device]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err, err
    assert main(["eval", ckpt, "--env", "pusht", "--obs", "state", "--episodes", "2"]) == 2
    assert "action_dim" in capsys.readouterr().err
    # the sampler is an inference-time choice: the same weights under DDPM
    assert (
        main(
            [
                "eval",
                ckpt,
                "--env",
                "pusht",
                "--episodes",
                "1",
                "--set",
                "policy.sampler=ddpm",
                "--set",
                "policy.num_inference_steps=20",
            ]
        )
        == 0
    )
    assert "success rate" in capsys.readouterr().out
    # a change that alters the weights' shapes is refused with one line
    assert main(["eval", ckpt, "--env", "pusht", "--episodes", "2", "--set", "policy.down_dims=8,16"]) == 2
    err = capsys.readouterr().err
    assert "weights do not fit" in err and "other shape" in err and "Traceback" not in err
    assert "with policy.down_dims=8,16 (--set changes inference-time fields only" in err
    # a video path it cannot write is refused before the episodes run, not after them
    (tmp_path / "notes.txt").write_text("a file")
    for video, says in (
        ("v.mp4", "v.mp4: dpbench writes a GIF; give a file path ending in .gif"),
        (".", "is a directory; give a file path ending in .gif"),
        ("notes.txt/v.gif", "notes.txt is a file, not a folder"),  # a FileExistsError after the episodes
    ):
        assert main(["eval", ckpt, "--env", "pusht", "--episodes", "2", "--video", str(tmp_path / video)]) == 2
        err = capsys.readouterr().err
        assert says in err and "Traceback" not in err and "episodes in" not in err
    with pytest.raises(SystemExit):  # argparse: a seed is >= 0
        main(["eval", ckpt, "--env", "pusht", "--seed-start", "-1"])
    assert "--seed-start: must be an integer >= 0 (a seed), got -1" in capsys.readouterr().err
    assert main(["eval", ckpt, "--env", "pusht", "--episodes", "2", "--video", str(tmp_path / "v.gif")]) == 0
    assert (tmp_path / "v.gif").stat().st_size > 0


def test_eval_says_what_is_wrong_with_a_checkpoint_it_cannot_take(tmp_path, tiny_pusht_hdf5, capsys):
    from safetensors.torch import load_file, save_file

    from dpbench.train import save_best

    assert _run(tmp_path, tiny_pusht_hdf5, "--seeds", "1") == 0
    ckpt = tmp_path / _records(tmp_path)[0]["checkpoint"]
    weights = load_file(str(ckpt))
    with safe_open(str(ckpt), framework="pt") as f:
        header = json.loads(f.metadata()["dpbench"])

    def variant(name: str, **meta) -> str:
        path = tmp_path / name
        save_file(weights, str(path), metadata={"dpbench": json.dumps({**header, **meta})})
        return str(path)

    capsys.readouterr()
    # trained on another env: said before the obs mode, which pusht does not have
    assert main(["eval", variant("lift.safetensors", env="lift", obs="low_dim"), "--env", "pusht"]) == 2
    assert "checkpoint was trained on env 'lift', not 'pusht'" in capsys.readouterr().err
    # no env in its metadata and none given
    assert main(["eval", variant("noenv.safetensors", env=None)]) == 2
    assert "names no env it was trained on; pass --env" in capsys.readouterr().err
    # training's weights-only best file (older runs): not "not written by dpbench"
    save_best(tmp_path / "old_best.safetensors", weights, 3, 0.5)
    assert main(["eval", str(tmp_path / "old_best.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "evaluate policy.safetensors beside it" in err and "not written by dpbench" not in err
    # a cell's folder, or its resume state, instead of a checkpoint
    assert main(["eval", str(ckpt.parent)]) == 2
    assert "is a folder; pass" in capsys.readouterr().err
    assert main(["eval", str(ckpt.parent / "train_state.pt")]) == 2
    assert "is training's resume state" in capsys.readouterr().err
    # an unfinished (or failed) cell's folder: no final checkpoint to name; a folder that is no cell's
    unfinished = tmp_path / "work" / "unfinished"
    unfinished.mkdir()
    save_best(unfinished / "best.safetensors", weights, 3, 0.5)
    (unfinished / "train_state.pt").write_bytes(b"")
    assert main(["eval", str(unfinished)]) == 2
    assert "is an unfinished cell's folder: its policy.safetensors is written when" in capsys.readouterr().err
    assert main(["eval", str(tmp_path / "records")]) == 2
    assert "is a folder; pass a checkpoint file (a finished cell's OUT/work/<cell>/policy" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "--policy", "nope"], "valid policies"),
        (["config", "diffusion", "--set", "policy.horizon=4"], "breaks its window rule"),
        (["run", "--env", "mars"], "valid envs: can, lift, pusht, square, tool_hang, transport"),
        (["run", "--set", "train.nope=1", "--preset", "smoke"], "no field 'nope'"),
        (["run", "--obs", "lidar", "--preset", "smoke"], "no obs mode 'lidar'"),
        (["data", "info", "/no/such/file.hdf5"], "no such dataset"),
        (["table", "--out", "/nonexistent-dir"], "no result records"),
    ],
)
def test_bad_input_gets_one_line_errors(argv, message, capsys, tiny_pusht_hdf5):
    if argv[0] == "run":
        argv = argv + ["--dataset", str(tiny_pusht_hdf5), "--out", "/tmp/dpbench-test-bad"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and err.count("\n") == 1


@pytest.mark.parametrize("seeds", ["0", "-2"])
def test_nonpositive_seeds_rejected(seeds, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "--seeds", seeds])
    assert exc.value.code == 2
    assert "positive integer" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "command", "stray"),
    [
        (["table", "--seeds", "3"], "dpbench table", "--seeds 3"),
        (["data", "info", "x.h5", "-z"], "dpbench data info", "-z"),
    ],
)
def test_a_stray_argument_is_reported_with_its_subcommands_usage(argv, command, stray, capsys):
    # argparse names a subcommand's stray argument under the top level's usage, which lists only the subcommands
    with pytest.raises(SystemExit) as exc:
        main(argv)
    err = capsys.readouterr().err
    assert exc.value.code == 2 and err.startswith(f"usage: {command} ")
    assert err.endswith(f"{command}: error: unrecognized arguments: {stray}\n")


def test_unwritable_results_dir(tmp_path, tiny_pusht_hdf5, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert _run(blocker / "sub", tiny_pusht_hdf5) == 2
    assert "not writable" in capsys.readouterr().err


def test_nan_actions_are_reported_not_sent():
    task = get_task("pusht")
    mode = task.obs_mode(None)
    from dpbench.config import build_configs

    policy = DiffusionUnetPolicy(mode.spec, build_configs(DiffusionUnetPolicy, "smoke")[0])
    with pytest.raises(DpbenchError, match="NaN or inf action"):
        check_actions(policy, torch.full((2, 8, 2), float("nan")), 2)
    with pytest.raises(DpbenchError, match=r"expected \(B, T_a, D_a\)"):
        check_actions(policy, torch.zeros(2, 3, 2), 2)
    # what select_action returns: one finite action per env
    with pytest.raises(DpbenchError, match=r"policy 'diffusion' returned a NaN or inf action \(env 1\)"):
        check_step_actions(policy, torch.tensor([[0.0, 1.0], [float("inf"), 0.0]]), 2)
    with pytest.raises(DpbenchError, match=r"select_action returned shape \(2, 8, 2\), expected \(B, D_a\) = \(2, 2\)"):
        check_step_actions(policy, torch.zeros(2, 8, 2), 2)


def test_nan_loss_names_the_step(tmp_path, tiny_pusht_hdf5, capsys):
    assert _run(tmp_path, tiny_pusht_hdf5, "--set", "train.lr=1e30", "--set", "train.warmup_steps=1") == 2
    err = capsys.readouterr().err
    assert "at step" in err and "lower train.lr" in err


def test_wilson_interval():
    lo, hi = wilson_ci(25, 50)
    assert lo == pytest.approx(0.366, abs=1e-3) and hi == pytest.approx(0.634, abs=1e-3)
    assert wilson_ci(0, 50)[0] == 0.0 and wilson_ci(50, 50)[1] == 1.0


def test_heldout_scores_the_selected_checkpoint_on_fresh_seeds(tmp_path, tiny_pusht_hdf5):
    """The record's held-out number is the max-selected evaluation's weights on seeds 200000.. : re-scoring
    best.safetensors on those seeds by hand gives the same episodes; train_loss is the mean loss since the last
    evaluation, so with an evaluation every step it is that step's loss."""
    from safetensors.torch import load_file

    from dpbench.checkpoint import load_policy
    from dpbench.evaluate import evaluate
    from dpbench.train import BEST_FILE

    assert (
        _run(
            tmp_path,
            tiny_pusht_hdf5,
            "--seeds",
            "1",
            "--set",
            "train.eval_every=1",
            "--set",
            "train.heldout_episodes=3",
        )
        == 0
    )
    rec = _records(tmp_path)[0]
    assert all(h["train_loss"] == pytest.approx(h["loss"]) for h in rec["history"])
    held = rec["final"]["heldout"]
    chosen = max(rec["history"], key=lambda h: h["score"])  # the first of equals, as the paper's max picks
    assert held["step"] == chosen["step"] and held["selected_score"] == chosen["score"]
    assert held["seed_start"] == 200000 and held["n_episodes"] == 3 and len(held["episode_final"]) == 3
    task = get_task("pusht")
    best_file = tmp_path / "work" / rec["cell_id"] / BEST_FILE
    policy, _ = load_policy(tmp_path / rec["checkpoint"])
    policy.load_state_dict(load_file(str(best_file)))
    # the finished run left best.safetensors a full checkpoint of those weights, at the selected step
    best, meta = load_policy(best_file)
    assert meta["step"] == chosen["step"] and meta["score"] == chosen["score"] and meta["env"] == "pusht"
    assert all(torch.equal(a, b) for a, b in zip(best.state_dict().values(), policy.state_dict().values()))
    res = evaluate(policy, task, task.obs_mode("keypoints"), n_episodes=3, seed_start=200000, sampling_seed=rec["seed"])
    assert res.episode_scores == held["episode_scores"] and res.episode_final == held["episode_final"]


def test_every_cli_option_has_help_text():
    """Each subcommand's options and arguments say what they are (`dpbench X --help`)."""
    import argparse

    from dpbench.cli_args import build_parser

    undescribed: list[str] = []  # a subcommand's own --help opens with what it does

    def walk(parser: argparse.ArgumentParser, path: str):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if not sub.description:
                        undescribed.append(f"{path} {name}")
                    yield from walk(sub, f"{path} {name}")
            elif not isinstance(action, argparse._HelpAction):
                yield path, action

    missing = [f"{path} {a.option_strings or a.dest}" for path, a in walk(build_parser(), "dpbench") if not a.help]
    assert not missing, missing
    assert not undescribed, undescribed


@pytest.mark.parametrize(
    "command",
    [["-m", "dpbench.cli", "list"], ["benchmarks/check_estimate.py", "--out", "results"]],
    ids=["dpbench list", "check_estimate"],
)
def test_a_reader_that_goes_away_gets_no_traceback(command):
    # `dpbench list | head`: the pipe's reader is gone before dpbench writes. Python ignores SIGPIPE, so every
    # write raises BrokenPipeError; dpbench stops quietly instead of printing a traceback (and another at exit).
    # check_estimate reads the committed records (results/), from the checkout's root.
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, *command],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    finally:
        os.close(write_end)
    assert done.returncode == 1
    assert done.stderr == ""
