"""Grids: `dpbench run` with comma lists and `dpbench sweep CONFIG.yaml`, the process pool and Ray
backends, kill-and-resume, concurrent sweeps sharing a results dir, and bad input before any cell starts."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from dpbench.cli import main
from dpbench.errors import DpbenchError
from dpbench.sweep import CellLock, Sweep, prepare_all

REPO = Path(__file__).resolve().parents[1]
TRAINED = re.compile(r"\(\d+\.\d min\) ->")  # the per-cell line of a cell this process trained
RECORD_KEYS = [
    "schema",
    "protocol",
    "cell_id",
    "command",
    "policy",
    "env",
    "obs",
    "action_mode",
    "seed",
    "preset",
    "config_hash",
    "config",
    "dataset",
    "dataset_check",
    "data_split",
    "history",
    "final",
    "wall",
    "checkpoint",
    "versions",
    "hardware",
    "date",
]


def _records(out: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((out / "records").glob("*.json"))]


def _write_sweep(path: Path, dataset: Path, out: Path, **extra) -> Path:
    """bc and diffusion x 2 seeds on the smoke preset, evaluated once, at the end (the slow part of a smoke cell)."""
    doc = {
        "policies": ["bc", "diffusion"],
        "envs": ["pusht"],
        "seeds": 2,
        "preset": "smoke",
        "dataset": str(dataset),
        "out": str(out),
        **extra,
        "set": {"train.eval_every": 1000, **extra.get("set", {})},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def _sweep_cmd(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "dpbench.cli", "sweep", str(config), "--quiet", *extra]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_grid_of_two_policies_two_seeds_in_a_process_pool(tmp_path, tiny_pusht_hdf5, capsys):
    out = tmp_path / "r"
    argv = [
        "run",
        "--policy",
        "bc,diffusion",
        "--env",
        "pusht",
        "--seeds",
        "2",
        "--preset",
        "smoke",
        "--dataset",
        str(tiny_pusht_hdf5),
        "--out",
        str(out),
        "--workers",
        "2",
        "--set",
        "train.eval_every=1000",
    ]
    assert main(argv) == 0
    captured = capsys.readouterr()
    recs = _records(out)
    assert sorted((r["policy"], r["seed"]) for r in recs) == [("bc", 0), ("bc", 1), ("diffusion", 0), ("diffusion", 1)]
    assert {r["hardware"]["torch_threads"] for r in recs} == {max(1, len(os.sched_getaffinity(0)) // 2)}
    for r in recs:  # the layout of the committed records (dpbench.records)
        assert list(r) == RECORD_KEYS
        assert (
            list(r["hardware"])
            == [
                "cpu",
                "cpu_family",
                "cores",
                "usable_cores",
                "cgroup_cpu_limit",
                "torch_threads",
                "cpu_capability",
                "omp_wait_policy",
                "malloc",
                "host",
                "device",
            ]
            and r["hardware"]["device"] == "cpu"
        )
        assert list(r["final"]) == [
            "max",
            "avg_last10",
            "k_min_train_loss",
            "success_max",
            "success_avg_last10",
            "last_eval",
            "heldout",
        ]
        assert list(r["wall"]) == ["train_s", "eval_s", "total_s", "contention", "processes"]
        assert [p["from_step"] for p in r["wall"]["processes"]] == [0]  # one process, from the start
        assert list(r["data_split"]) == [
            "split_seed",
            "val_ratio",
            "max_train_episodes",
            "n_train_episodes",
            "train_episodes",
            "val_episodes",
        ]
    assert "2 worker processes" in captured.out
    # each cell's own progress reaches the driver's terminal from the workers
    assert "[diffusion/pusht seed 1] step 6: score" in captured.out + captured.err
    for policy in ("bc", "diffusion"):
        assert f"| dpbench | {policy} | smoke | path | train.eval_every=1000 | 2 |" in captured.out
    assert "paper (Chi et al. 2023)" in captured.out
    # rerun: nothing left to do, same records
    before = {p.name: p.read_bytes() for p in (out / "records").glob("*.json")}
    assert main(argv + ["--quiet"]) == 0
    assert "4 done, 0 to resume, 0 to start" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in (out / "records").glob("*.json")} == before


def test_sweep_file_overrides_per_policy_and_per_cell(tmp_path, tiny_pusht_hdf5):
    cfg = _write_sweep(
        tmp_path / "s.yaml",
        tiny_pusht_hdf5,
        tmp_path / "r",
        set={"train.steps": 6},
        per_policy={"bc": {"seeds": [3], "set": {"train.lr": "1e-4"}}},
        per_cell=[{"policy": "diffusion", "seed": 1, "set": {"train.steps": 9}, "preset": "smoke"}],
    )
    specs = Sweep.from_yaml(cfg).specs()
    assert [(s.policy, s.seed) for s in specs] == [("bc", 3), ("diffusion", 0), ("diffusion", 1)]
    assert specs[0].overrides == {"train.eval_every": "1000", "train.steps": "6", "train.lr": "1e-4"}
    assert specs[1].overrides == {"train.eval_every": "1000", "train.steps": "6"}
    assert specs[2].overrides == {"train.eval_every": "1000", "train.steps": "9"}
    assert {s.preset for s in specs} == {"smoke"} and specs[0].out == tmp_path / "r"
    cells = prepare_all(specs)
    assert cells[0].tcfg.lr == 1e-4 and cells[2].tcfg.steps == 9 and cells[1].tcfg.steps == 6


@pytest.mark.parametrize(
    "extra, message",
    [
        ({"polices": ["bc"]}, "unknown key 'polices'"),
        ({"per_cell": [{"policy": "ibc"}]}, "matches no cell"),
        ({"per_policy": {"ibc": {}}}, "not in policies"),
        ({"seeds": 0}, "positive number of seeds"),
        ({"per_cell": [{"policy": "bc", "steps": 3}]}, "unknown key 'steps'"),
    ],
)
def test_bad_sweep_files_get_one_line_errors(tmp_path, tiny_pusht_hdf5, capsys, extra, message):
    cfg = _write_sweep(tmp_path / "s.yaml", tiny_pusht_hdf5, tmp_path / "r", **extra)
    assert main(["sweep", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_a_top_level_per_cell_entry_needs_to_match_only_one_sub_grid(tmp_path, capsys):
    # the paper grid's file has sub-grids per task; a top-level per_cell entry for one robomimic cell was refused
    # ("matches no cell of the grid") because every sub-grid without that cell checked it on its own
    def sweep_file(name, grids=None, **top):
        doc = {"policies": ["bc"], "seeds": 2, "preset": "smoke", **top}
        doc["grids"] = grids or [
            {"envs": ["pusht"], "obs": ["keypoints"], "dataset": "human"},
            {"envs": ["square"], "obs": ["low_dim"], "dataset": "scripted"},
        ]
        path = tmp_path / name
        path.write_text(yaml.safe_dump(doc))
        return path

    cfg = sweep_file("ok.yaml", per_cell=[{"env": "square", "seed": 1, "preset": "quick", "set": {"train.lr": 3e-4}}])
    specs = Sweep.from_yaml(cfg).specs()
    changed = [(s.env, s.seed) for s in specs if s.preset == "quick"]
    assert changed == [("square", 1)] and specs[-1].overrides == {"train.lr": "0.0003"}
    assert all(s.overrides == {} for s in specs[:-1])
    # an entry matching no cell of any sub-grid is still refused, naming the file
    bad = sweep_file("none.yaml", per_cell=[{"env": "lift"}])
    assert main(["sweep", str(bad), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{bad}: per_cell[0]" in err and "matches no cell of any sub-grid" in err and err.count("\n") == 1
    # a sub-grid's own entry must match one of its own cells, and every message names it by its place in the file,
    # not by its place after the top level's entries
    grids = [
        {"envs": ["pusht"], "obs": ["keypoints"], "dataset": "human", "per_cell": [{"env": "square"}]},
        {"envs": ["square"], "obs": ["low_dim"], "dataset": "scripted"},
    ]
    own = sweep_file("own.yaml", grids, per_cell=[{"seed": 0}])
    with pytest.raises(DpbenchError, match=r"grids\[0\]\.per_cell\[0\] .* matches no cell of its sub-grid"):
        Sweep.from_yaml(own).specs()
    grids[1]["per_cell"] = [{"env": "square", "bogus": 1}]
    with pytest.raises(DpbenchError, match=r"grids\[1\]: per_cell\[0\]: unknown key 'bogus'"):
        Sweep.from_yaml(sweep_file("key.yaml", grids, per_cell=[{"seed": 0}]))
    with pytest.raises(DpbenchError, match=r"grids\[1\]: per_cell\[0\]\.set: expected a mapping"):
        grids[1]["per_cell"] = [{"env": "square", "set": 3}]
        Sweep.from_yaml(sweep_file("set.yaml", grids, per_cell=[{"seed": 0}]))
    with pytest.raises(DpbenchError, match=r"s.yaml: per_cell is a list of mappings"):
        Sweep.from_yaml(sweep_file("s.yaml", per_cell={"env": "square"}))


def test_a_top_level_dataset_that_would_merge_two_sub_grids_cells_is_refused(tmp_path):
    # the ph and mh sub-grids of the paper's file both have Square DP-C; a top-level per_cell dataset gave both the
    # same data, so the sweep's de-duplication silently dropped the mh cells (147 cells instead of 150)
    doc = {
        "policies": ["diffusion"],
        "envs": ["square"],
        "obs": ["low_dim"],
        "seeds": 1,
        "grids": [{"dataset": "scripted"}, {"dataset": "scripted-mh"}],
        "per_cell": [{"env": "square", "policy": "diffusion", "dataset": "mine.hdf5"}],
    }
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(DpbenchError, match=r"per_cell\[0\] sets the dataset of diffusion square seed 0 in grids\[0\]"):
        Sweep.from_yaml(path).specs()
    # inside the sub-grid it is for, it changes that column only
    doc["grids"][1]["per_cell"] = doc.pop("per_cell")
    path.write_text(yaml.safe_dump(doc))
    assert [s.dataset for s in Sweep.from_yaml(path).specs()] == ["scripted", "mine.hdf5"]


def test_unknown_names_are_all_reported_before_any_cell(tmp_path, tiny_pusht_hdf5, capsys):
    out = tmp_path / "r"
    argv = [
        "run",
        "--policy",
        "bc,nope,zilch",
        "--env",
        "pusht,mars",
        "--preset",
        "smoke",
        "--dataset",
        str(tiny_pusht_hdf5),
        "--out",
        str(out),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "unknown policies 'nope', 'zilch'; valid policies:" in err
        and "unknown env 'mars'; valid envs: can, lift, pusht, square" in err
    )
    assert err.count("\n") == 1
    assert not out.exists()  # checked before the results directory is made


def test_a_sweep_files_unknown_policy_names_the_file_and_makes_nothing(tmp_path, tiny_pusht_hdf5, capsys):
    out = tmp_path / "r"
    cfg = _write_sweep(tmp_path / "s.yaml", tiny_pusht_hdf5, out, policies=["bc", "my.pkg.Policy"])
    for extra in ([], ["--dry-run"]):
        assert main(["sweep", str(cfg), "--quiet", *extra]) == 2
        err = capsys.readouterr().err
        assert f"{cfg}: unknown policy 'my.pkg.Policy'" in err and "did you mean 'my.pkg:Policy'?" in err
        assert err.count("\n") == 1 and not out.exists()


def test_a_misspelt_dataset_name_is_an_unknown_name_not_a_missing_file(tmp_path, capsys):
    # 'scripted_mh' reads as neither a name nor a path: one error naming the valid ones, even with --skip-blocked,
    # which skips only cells whose data cannot be had here
    out = tmp_path / "r"
    cfg = _write_sweep(tmp_path / "s.yaml", Path("scripted_mh"), out, envs=["square"], policies=["bc"])
    assert main(["sweep", str(cfg), "--skip-blocked", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'scripted_mh' for square; valid names: scripted, scripted-mh, scripted-delta" in err
    assert err.count("\n") == 1 and not (out / "work").exists()
    assert main(["run", "--policy", "bc", "--dataset", "humna", "--preset", "smoke", "--out", str(out)]) == 2
    assert "unknown dataset 'humna' for pusht; valid names: human, scripted, or a PATH" in capsys.readouterr().err
    # a path that does not exist is still a missing file, named as such; a ~user that is no user, one line too
    argv = ["run", "--policy", "bc", "--preset", "smoke", "--out", str(out), "--dataset"]
    assert main([*argv, str(tmp_path / "no.zarr")]) == 2
    assert "no.zarr: no such dataset (check the path)" in capsys.readouterr().err
    assert main([*argv, "~no-such-user-x/demos.zarr"]) == 2
    err = capsys.readouterr().err
    assert "cannot expand '~'" in err and err.count("\n") == 1


def test_a_grid_that_cannot_run_here_is_refused_before_anything_is_collected(tmp_path, capsys, monkeypatch):
    # Square's demos would be collected first (minutes to hours); the Push-T cells after them need human demos
    # that are not here. The grid is refused at once, collecting nothing, and the message says how to go on.
    import dpbench.data.registry as registry

    monkeypatch.setenv("DPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "human_pusht_path", lambda: None)
    collected = []
    monkeypatch.setattr(registry, "collect_robomimic", lambda task, *a, **k: collected.append(task))
    out = tmp_path / "r"
    grid = {
        "out": str(out),
        "seeds": 1,
        "grids": [
            {"policies": ["bc"], "envs": ["square"], "obs": ["low_dim"], "dataset": "scripted"},
            {"policies": ["bc"], "envs": ["pusht"], "obs": ["keypoints"], "dataset": "human"},
        ],
    }
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(grid))
    assert main(["sweep", str(tmp_path / "s.yaml"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "human Push-T demos" in err and "in a sweep file: dataset: scripted" in err and err.count("\n") == 1
    assert collected == [] and not (out / "work").exists()


def test_unwritable_results_dir_and_missing_ray_fail_at_start(tmp_path, tiny_pusht_hdf5, capsys, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    cfg = _write_sweep(tmp_path / "s.yaml", tiny_pusht_hdf5, blocker / "sub")
    assert main(["sweep", str(cfg), "--quiet"]) == 2
    assert "not writable" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    assert main(["sweep", str(cfg), "--quiet", "--backend", "ray", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "pip install 'dpbench[ray]'" in err and err.count("\n") == 1
    assert not (tmp_path / "r" / "records").exists()


def test_corrupt_record_of_a_cell_is_named_not_overwritten(tmp_path, tiny_pusht_hdf5, capsys):
    cfg = _write_sweep(tmp_path / "s.yaml", tiny_pusht_hdf5, tmp_path / "r")
    cell = prepare_all(Sweep.from_yaml(cfg).specs())[0]
    cell.record_path.parent.mkdir(parents=True)
    cell.record_path.write_text('{"schema": 1, "cell_id": "x", "fin')
    assert main(["sweep", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert cell.record_path.name in err and "delete the file" in err and err.count("\n") == 1
    assert cell.record_path.read_text().endswith('"fin')


def test_cell_lock_is_exclusive_and_dies_with_its_holder(tmp_path):
    lock = CellLock(tmp_path / "cell")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from dpbench.sweep import CellLock; "
                f"assert CellLock({str(tmp_path / 'cell')!r}).acquire(); print('locked', flush=True); time.sleep(60)"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert not lock.acquire()
        assert f"pid {holder.pid}" in lock.holder()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert lock.acquire()  # no stale lock after SIGKILL
    assert not CellLock(tmp_path / "cell").acquire()  # exclusive within one process too
    lock.release()


def test_sigkill_then_rerun_finishes_only_the_missing_cells(tmp_path, tiny_pusht_hdf5, capsys):
    out = tmp_path / "r"
    # the last cell is long, so the kill lands while it trains; its checkpoint is then resumed
    slow = {"policy": "diffusion", "seed": 1, "set": {"train.steps": 30, "train.checkpoint_every": 2}}
    cfg = _write_sweep(tmp_path / "s.yaml", tiny_pusht_hdf5, out, per_cell=[slow])
    cells = prepare_all(Sweep.from_yaml(cfg).specs())
    slow_cell = next(c for c in cells if c.spec.policy == "diffusion" and c.spec.seed == 1)
    proc = subprocess.Popen(
        _sweep_cmd(cfg, "--workers", "2"),
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if list((out / "records").glob("*.json")) and (slow_cell.workdir / "train_state.pt").exists():
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"the sweep ended before it could be killed: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    # the orphaned workers stop by themselves, releasing their cells' locks; only then is the set of
    # finished records fixed (a worker may complete a record in the instant before it notices)
    deadline = time.monotonic() + 10
    for cell in cells:
        lock = CellLock(cell.workdir)
        while not lock.acquire():
            assert time.monotonic() < deadline, "an orphaned worker still holds its cell"
            time.sleep(0.1)
        lock.release()
    before = {p.name: p.read_bytes() for p in (out / "records").glob("*.json")}
    assert 1 <= len(before) < len(cells) and slow_cell.record_path.name not in before
    capsys.readouterr()
    assert main(["sweep", str(cfg), "--quiet"]) == 0  # the same command again
    stdout = capsys.readouterr().out
    plan = re.search(r"(\d+) done, (\d+) to resume, (\d+) to start", stdout)
    assert plan and int(plan[1]) == len(before) and int(plan[2]) >= 1, stdout  # the slow cell resumes
    assert len(TRAINED.findall(stdout)) == len(cells) - len(before)
    after = {p.name: p.read_bytes() for p in (out / "records").glob("*.json")}
    assert len(after) == len(cells) and {n: after[n] for n in before} == before  # nothing lost, nothing rewritten
    recs = _records(out)
    assert len({r["cell_id"] for r in recs}) == len(cells)
    assert [h["step"] for h in json.loads(slow_cell.record_path.read_text())["history"]] == [30]


def test_two_concurrent_sweeps_share_a_results_dir(tmp_path, tiny_pusht_hdf5):
    out = tmp_path / "r"
    cfg = _write_sweep(tmp_path / "s.yaml", tiny_pusht_hdf5, out)
    procs = [
        subprocess.Popen(
            _sweep_cmd(cfg, "--workers", "1"),
            cwd=tmp_path,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [r[1][-2000:] for r in results]
    recs = _records(out)
    assert len(recs) == 4 and len({r["cell_id"] for r in recs}) == 4
    # every cell trained exactly once, by one of the two
    assert sum(len(TRAINED.findall(stdout)) for stdout, _ in results) == 4
    for stdout, _ in results:
        assert stdout.count("| dpbench | ") == 2  # each prints the whole table


def test_ray_backend(tmp_path, tiny_pusht_hdf5, monkeypatch, capsys):
    ray = pytest.importorskip(
        "ray", reason="Ray is not installed (pip install 'dpbench[ray]'); skipping the Ray backend test"
    )
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        out = tmp_path / "r"
        argv = [
            "run",
            "--policy",
            "bc,diffusion",
            "--seeds",
            "1",
            "--preset",
            "smoke",
            "--dataset",
            str(tiny_pusht_hdf5),
            "--out",
            str(out),
            "--backend",
            "ray",
            "--set",
            "train.eval_every=1000",
        ]
        assert main(argv) == 0
        captured = capsys.readouterr()
        assert ray.is_initialized()  # run used this instance and left it running
    finally:
        ray.shutdown()
    recs = _records(out)
    assert sorted(r["policy"] for r in recs) == ["bc", "diffusion"]
    assert "Ray, 1 torch thread per cell" in captured.out
    assert "| dpbench | diffusion | smoke | path | train.eval_every=1000 | 1 |" in captured.out
    assert "[bc/pusht seed 0] step 6: score" in captured.out + captured.err  # progress through the Ray queue


def test_dry_run_lists_cells_and_runs_nothing(tmp_path, tiny_pusht_hdf5, capsys):
    cfg = _write_sweep(tmp_path / "s.yaml", tiny_pusht_hdf5, tmp_path / "r")
    assert main(["sweep", str(cfg), "--dry-run"]) == 0
    out = capsys.readouterr().out
    cells = [line for line in out.splitlines() if line.startswith("  new ")]
    assert len(cells) == 4 and all("pusht-keypoints__" in line for line in cells)
    assert f"results dir {(tmp_path / 'r').resolve()} " in out  # where done cells were looked for
    assert not (tmp_path / "r" / "records").exists()
    # more local workers than cores only share them: the wall time counted 8 cores on a 2-core machine
    from dpbench.host import usable_cores

    assert main(["sweep", str(cfg), "--dry-run", "--workers", str(usable_cores() + 6)]) == 0
    out = capsys.readouterr().out
    assert f"--workers {usable_cores() + 6} on this machine's {usable_cores()} usable core(s)" in out


def test_a_paper_preset_cell_on_the_cpu_gets_one_note(capsys):
    from types import SimpleNamespace

    from dpbench.commands import _warn_paper_on_cpu

    def cell(preset: str, device: str) -> SimpleNamespace:
        return SimpleNamespace(spec=SimpleNamespace(preset=preset, device=device))

    _warn_paper_on_cpu([cell("quick", "cpu"), cell("paper", "auto" if not torch.cuda.is_available() else "cpu")])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "paper preset on the CPU takes days" in err
    _warn_paper_on_cpu([cell("quick", "cpu"), cell("smoke", "cpu")])
    assert capsys.readouterr().err == ""


def test_grid_errors_keep_other_cells(tmp_path, tiny_pusht_hdf5, capsys):
    cfg = _write_sweep(
        tmp_path / "s.yaml",
        tiny_pusht_hdf5,
        tmp_path / "r",
        seeds=1,
        per_policy={"bc": {"set": {"train.lr": "1e30", "train.warmup_steps": 1}}},
    )
    assert main(["sweep", str(cfg), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 cells failed" in err and "lower train.lr" in err
    assert [r["policy"] for r in _records(tmp_path / "r")] == ["diffusion"]


def test_an_interrupt_inside_numba_code_is_still_one_clear_message(monkeypatch, capsys):
    # numba's compiled functions (robosuite's OSC controller, every robomimic env step) turn the KeyboardInterrupt
    # that Ctrl-C or SIGTERM raises inside them into "SystemError: CPUDispatcher(...) returned a result with an
    # exception set", caused by it: a killed robomimic run printed a traceback wall instead of the resume message
    import dpbench.cli as cli
    import dpbench.cli_args as cli_args

    def interrupted_in_numba(args):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise SystemError(
                "CPUDispatcher(<function opspace_matrices>) returned a result with an exception set"
            ) from exc

    monkeypatch.setattr(cli_args, "cmd_plot", interrupted_in_numba)
    assert cli.main(["plot"]) == 130
    err = capsys.readouterr().err
    assert "dpbench: interrupted." in err and "rerun the same command" in err and "Traceback" not in err

    def broken(args):
        raise SystemError("a real bug")  # not an interrupt: it still surfaces

    monkeypatch.setattr(cli_args, "cmd_plot", broken)
    with pytest.raises(SystemError, match="a real bug"):
        cli.main(["plot"])


def test_sigterm_stops_a_run_like_ctrl_c(tmp_path, tiny_pusht_hdf5):
    out = tmp_path / "r"
    cmd = [
        sys.executable,
        "-m",
        "dpbench.cli",
        "run",
        "--policy",
        "diffusion",
        "--env",
        "pusht",
        "--seeds",
        "1",
        "--preset",
        "smoke",
        "--dataset",
        str(tiny_pusht_hdf5),
        "--out",
        str(out),
        "--quiet",
        "--workers",
        "1",
        "--set",
        "train.steps=100000",
        "--set",
        "train.checkpoint_every=2",
        "--set",
        "train.eval_every=100000",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None and not list((out / "work").glob("*/train_state.pt")):
        time.sleep(0.05)
    assert proc.poll() is None, f"the run ended before it could be stopped: {proc.stderr.read()[-2000:]}"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    # 128 + SIGTERM, as a shell or scheduler reports a job killed by it (Ctrl-C's is 130)
    assert proc.returncode == 143 and "interrupted" in err and "Traceback" not in err, err
    assert list((out / "work").glob("*/train_state.pt"))  # the checkpoint to resume from is kept


def test_without_human_demos_the_scripted_fallback_is_said_once(tmp_path, tiny_pusht_hdf5, capsys, monkeypatch):
    # No --dataset and no human Push-T data: the scripted demos are made once and the switch is said once, not
    # once per cell that found them missing while the grid was resolved before collecting.
    import shutil

    import dpbench.data.registry as registry

    monkeypatch.setenv("DPBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "human_pusht_path", lambda: None)
    made = []

    def collect(n, path, progress=True):  # the tiny set stands in for the 200 scripted demos
        made.append(n)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(tiny_pusht_hdf5, path)

    monkeypatch.setattr(registry, "collect_pusht", collect)
    argv = ["run", "--policy", "bc", "--env", "pusht", "--preset", "smoke", "--seeds", "2", "--quiet"]
    assert main([*argv, "--out", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert made == [200] and out.count("human Push-T demos not found; using scripted demonstrations instead") == 1


def test_the_papers_baselines_train_in_delta_actions_on_robomimic_unless_a_dataset_is_given(
    tmp_path, monkeypatch, capsys
):
    # The paper trains LSTM-GMM, IBC and BET in robomimic's delta actions and Diffusion Policy in absolute ones
    # (the original's baseline task configs read the delta low_dim.hdf5, DP's the *_abs.hdf5). Without --dataset,
    # `dpbench run --policy lstm_gmm --env lift` must train in the paper's action space, not the task's default.
    from types import SimpleNamespace

    from dpbench.policies import get_policy_class
    from dpbench.runner import CellSpec, dataset_name
    from dpbench.sweep.cells import _action_space_note

    paper = {"lstm_gmm": "scripted-delta", "ibc": "scripted-delta", "bet": "scripted-delta"}
    for name in ("lstm_gmm", "ibc", "bet", "diffusion", "diffusion_transformer", "bc"):
        cls = get_policy_class(name)
        assert dataset_name(CellSpec(name, "square", 0), cls) == paper.get(name)  # None: the task's (abs) demos
        assert dataset_name(CellSpec(name, "square", 0, dataset="scripted-mh"), cls) == "scripted-mh"  # as given
        assert dataset_name(CellSpec(name, "pusht", 0), cls) is None  # Push-T has one action space
    # as a user runs it: the dry run names the demos each cell would train on (none collected in this cache)
    monkeypatch.setenv("DPBENCH_CACHE", str(tmp_path / "cache"))
    sweep = tmp_path / "s.yaml"
    sweep.write_text(yaml.safe_dump({"policies": ["lstm_gmm", "diffusion"], "envs": ["lift"], "seeds": 1}))
    assert main(["sweep", str(sweep), "--dry-run", "--out", str(tmp_path / "r")]) == 0
    lines = capsys.readouterr().out.splitlines()
    (lstm,) = [x for x in lines if " lstm_gmm lift/low_dim ph seed 0 " in x]
    (dp,) = [x for x in lines if " diffusion lift/low_dim ph seed 0 " in x]
    assert "[scripted-delta lift demos not collected yet" in lstm and "[scripted lift demos not collected yet" in dp
    # the run's header says who chose the action space, and when --dataset overrides a paper policy's
    cell = lambda policy, dataset, kind, mode: SimpleNamespace(  # noqa: E731
        spec=CellSpec(policy, "lift", 0, dataset=dataset),
        data=SimpleNamespace(kind=kind),
        action_mode=mode,
        policy_cls=get_policy_class(policy),
    )
    assert _action_space_note(cell("lstm_gmm", None, "scripted-delta", "delta")) == [
        "[dpbench] lstm_gmm on lift trains in delta actions (scripted-delta: as the paper trains it); --dataset "
        "scripted for absolute ones"
    ]
    assert _action_space_note(cell("ibc", "scripted-mh", "scripted-mh", "abs")) == [
        "[dpbench] note: ibc on lift trains in abs actions on scripted-mh demos; the paper trains it in delta actions "
        "(--dataset scripted-mh-delta)"
    ]
    assert _action_space_note(cell("bc", "scripted-delta", "scripted-delta", "delta")) == [
        "[dpbench] note: bc on lift trains in delta actions on scripted-delta demos; the policy's default_action_mode "
        "is abs (--dataset scripted)"
    ]
    for quiet in (cell("diffusion", None, "scripted", "abs"), cell("bet", "scripted-delta", "scripted-delta", "delta")):
        assert _action_space_note(quiet) == []
    # dpbench config names the demos too, for the variant asked
    assert main(["config", "ibc", "--env", "square", "--variant", "mh"]) == 0
    assert "demos: --dataset scripted-mh-delta (delta actions" in capsys.readouterr().out


@pytest.mark.parametrize("path", sorted((REPO / "sweeps").glob("*.yaml")), ids=lambda p: p.name)
def test_every_committed_sweep_file_resolves_every_cell(path: Path) -> None:
    # a README or a note points users at these files: each must parse, and each cell's names, preset and --set
    # overrides must resolve (no data is read)
    from dpbench.runner import resolve_config

    specs = Sweep.from_yaml(path).specs()
    assert specs
    for spec in specs:
        resolve_config(spec)


def test_other_versions_of_a_cell_are_its_own_runs_under_another_hash(tmp_path, capsys):
    from types import SimpleNamespace

    from dpbench.sweep.grid import _note_other_versions, other_versions

    def cid(preset_hash: str, seed: int = 0) -> str:
        return f"pusht-keypoints__bc__human-1ba4b852__{preset_hash}__seed{seed}"

    (tmp_path / "records").mkdir()
    others = ("smoke-long-bbbbbbbbbb", "quick-eeeeeeeeee")  # other presets
    for name in (cid("smoke-aaaaaaaaaa"), cid("smoke-dddddddddd", 1), *(cid(o) for o in others)):
        (tmp_path / "records" / f"{name}.json").write_text("{}")
    for name in (cid("smoke-aaaaaaaaaa"), cid("smoke-cccccccccc"), cid("smoke-ffffffffff")):
        (tmp_path / "work" / name).mkdir(parents=True)
    for name in (cid("smoke-aaaaaaaaaa"), cid("smoke-cccccccccc")):  # ffffffffff: a folder without a checkpoint
        (tmp_path / "work" / name / "train_state.pt").write_bytes(b"")
    cell = SimpleNamespace(cell_id=cid("smoke-0123456789"), spec=SimpleNamespace(out=tmp_path))
    # the finished run (its record, not also its work dir) and the unfinished one; not another preset ("smoke-long",
    # "quick"), seed or the cell itself
    assert [str(p.relative_to(tmp_path)) for p in other_versions(cell)] == [
        f"work/{cid('smoke-cccccccccc')}",
        f"records/{cid('smoke-aaaaaaaaaa')}.json",
    ]
    _note_other_versions([cell], {cell.cell_id})
    assert "starts from step 0" in capsys.readouterr().err
    _note_other_versions([cell], {cell.cell_id, cid("smoke-aaaaaaaaaa"), cid("smoke-cccccccccc")})
    assert capsys.readouterr().err == ""  # the grid's own variants (a sweep's other normalizer, say) are not news
    (tmp_path / "records" / f"{cell.cell_id}.json").write_text("{}")
    assert len(other_versions(cell)) == 2


def test_a_pool_stopped_mid_cell_leaves_no_semaphore_for_the_tracker_to_report(tmp_path):
    # Ctrl-C in `dpbench sweep --workers 2` on Push-T printed "resource_tracker: There appear to be 2 leaked
    # semaphore objects" under the one-line interrupt message: numcodecs makes a named semaphore in each worker when
    # zarr first decodes a chunk, and the terminated workers never unlinked theirs. A worker here makes one the same
    # way (multiprocessing.Lock under the spawn start method) and is stopped as the driver stops a pool on Ctrl-C.
    ready = tmp_path / "ready"
    script = tmp_path / "stop_pool.py"
    script.write_text(
        "import multiprocessing as mp, sys, time\n"
        "from pathlib import Path\n"
        "from dpbench.sweep.backends import LocalPool\n"
        "def hold_a_lock(ready):\n"
        "    global lock\n"
        "    lock = mp.Lock()  # a named semaphore, registered with the resource tracker\n"
        "    Path(ready).touch()\n"
        "    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    pool = LocalPool(1, 1, progress=False)\n"
        "    pool.pool.submit(hold_a_lock, sys.argv[1])\n"
        "    deadline = time.monotonic() + 90\n"
        "    while not Path(sys.argv[1]).exists() and time.monotonic() < deadline:\n"
        "        time.sleep(0.05)\n"
        "    assert Path(sys.argv[1]).exists(), 'the worker never started its task'\n"
        "    pool.close(abort=True)\n"
        "    pool.release()\n"
    )
    res = subprocess.run(
        [sys.executable, str(script), str(ready)], env=_env(), capture_output=True, text=True, timeout=150
    )
    assert res.returncode == 0 and ready.exists(), res.stderr
    assert "leaked semaphore" not in res.stderr and res.stderr == "", res.stderr
