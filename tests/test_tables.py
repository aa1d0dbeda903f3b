"""`dpbench table` and `dpbench plot` on hand-made records: the pivot's numbers (mean ± std over seeds,
Wilson CI over pooled episodes), paper rows and daggers, the formats, results/README.md, figures, and
corrupt records that are named and skipped."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from dpbench.cli import main
from dpbench.equal_time import equal_time_table
from dpbench.metrics import wilson_ci
from dpbench.records import PROTOCOL_VERSION, SCHEMA_VERSION, record_of_same_demos, write_json_atomic
from dpbench.render import Table, render_latex
from dpbench.results import group_records, short_hash
from dpbench.tables import format_table


def make_heldout(scores: list[float], success: list[bool], final: list[float]) -> dict:
    """A record's final.heldout: the selected checkpoint on fresh seeds, episode by episode."""
    return {
        "step": 200,
        "selected_score": 0.9,
        "seed_start": 200000,
        "score": float(np.mean(scores)),
        "success_rate": float(np.mean(success)),
        "final_mean": float(np.mean(final)),
        "n_episodes": len(scores),
        "episode_scores": scores,
        "episode_success": success,
        "episode_final": final,
    }


def make_record(
    policy: str,
    seed: int,
    scores: list[float],
    success: list[bool],
    obs: str = "keypoints",
    preset: str = "paper",
    dataset: str = "human",
    latency: float = 10.0,
    heldout: dict | None = None,
) -> dict:
    """A schema-complete record whose evaluations scored `scores` and whose final evaluation had `success`."""
    history = [
        {
            "step": 100 * (i + 1),
            "train_seconds": 30.0 * (i + 1) + seed,
            "loss": 0.1,
            "score": s,
            "success_rate": float(np.mean(success)),
            "eval_seconds": 1.0,
            "chunk_latency_ms": latency + i,
        }
        for i, s in enumerate(scores)
    ]
    chash = f"{policy[:4]}{preset[:3]}cfg"
    return {
        "schema": SCHEMA_VERSION,
        "protocol": PROTOCOL_VERSION,
        "cell_id": f"pusht-{obs}__{policy}__{dataset}-ab12cd34__{preset}-{chash}__seed{seed}",
        "command": f"dpbench run --policy {policy} --preset {preset}",
        "policy": policy,
        "env": "pusht",
        "obs": obs,
        "seed": seed,
        "preset": preset,
        "config_hash": chash,
        "config": {"policy": {}, "train": {}, "overrides": {}},
        "dataset": {
            "kind": dataset,
            "path": "/data/pusht.zarr",
            "hash": "ab12cd34ef567890",
            "episodes": 206,
            "steps": 25650,
        },
        "history": history,
        "final": {
            "max": max(scores),
            "avg_last10": float(np.mean(scores[-10:])),
            "success_max": 0.0,
            "success_avg_last10": 0.0,
            "last_eval": {
                "score": scores[-1],
                "success_rate": float(np.mean(success)),
                "n_episodes": len(success),
                "episode_success": success,
                "episode_scores": [scores[-1]] * len(success),
            },
            "heldout": heldout,
        },
        "wall": {"train_s": 60.0, "eval_s": 6.0, "total_s": 66.0},
        "checkpoint": "",
        "versions": {"python": "3.11", "torch": "2.13.0"},
        "hardware": {"cpu": "Test CPU", "cores": 2, "torch_threads": 1, "host": "ci"},
        "date": f"2026-01-0{seed + 1}T00:00:00+00:00",
    }


@pytest.fixture
def results(tmp_path) -> Path:
    """diffusion (paper preset, human data) x 2 seeds on two obs modes, lstm_gmm (smoke, scripted) x 1 seed."""
    out = tmp_path / "results"
    recs = [
        make_record(
            "diffusion",
            0,
            [0.5, 0.9, 0.8],
            [True, True, False, False],
            heldout=make_heldout([1.0, 0.6, 0.8], [True, False, False], [0.96, 0.5, 0.7]),
        ),
        make_record(
            "diffusion",
            1,
            [0.6, 0.7, 0.7],
            [True, False, False, False],
            heldout=make_heldout([0.4, 1.0, 0.7], [False, True, True], [0.3, 0.97, 0.99]),
        ),
        make_record("diffusion", 0, [0.4, 0.6], [True, False], obs="state"),
        make_record("lstm_gmm", 0, [0.3, 0.5], [False, False], preset="smoke", dataset="scripted", latency=2.0),
    ]
    for r in recs:
        write_json_atomic(out / "records" / f"{r['cell_id']}.json", r)
    return out


def _md_rows(text: str) -> dict[str, list[str]]:
    rows = [line.strip("|").split("|") for line in text.splitlines() if line.startswith("| ")]
    return {f"{r[0].strip()}/{r[1].strip()}": [c.strip() for c in r] for r in rows[1:]}


def test_pivot_policies_by_tasks_with_seed_stats_and_wilson_ci(results, capsys):
    assert main(["table", "--out", str(results)]) == 0
    captured = capsys.readouterr()
    header = captured.out.splitlines()[0]
    per_task = ["max / avg-last-10 / k-min-loss", "held-out (95% CI)", "success (95% CI)", "final coverage (95% CI)"]
    assert header == (
        "| source | policy | preset | dataset | seeds | "
        + " | ".join(f"{t} {c}" for t in ("pusht/keypoints", "pusht/state") for c in per_task)
        + " |"
    )
    rows = _md_rows(captured.out)
    dp = rows["dpbench/diffusion"]
    # max over evaluations per seed: 0.9, 0.7 -> mean 0.8, sample std 0.141; avg-last-10: 0.733, 0.667; with
    # fewer than 10 evaluations k_min_train_loss averages them all, as avg-last-10 does
    assert dp[5] == "0.800 ± 0.141 / 0.700 ± 0.047 (last 3) / 0.700 ± 0.047 (n=2)"
    # held-out: seeds score 0.8 and 0.7; the interval is over the 6 pooled episodes (normal approximation)
    pooled = np.array([1.0, 0.6, 0.8, 0.4, 1.0, 0.7])
    half = 1.96 * pooled.std(ddof=1) / np.sqrt(6)
    assert dp[6] == f"0.75 [{0.75 - half:.2f}, {min(1.0, 0.75 + half):.2f}]"
    lo, hi = wilson_ci(3, 6)  # 1 + 2 held-out successes over 3 + 3 episodes; the rate is the mean over seeds
    assert dp[7] == f"0.50 [{lo:.2f}, {hi:.2f}]"
    final = np.array([0.96, 0.5, 0.7, 0.3, 0.97, 0.99])
    half = 1.96 * final.std(ddof=1) / np.sqrt(6)
    assert dp[8] == f"{final.mean():.2f} [{final.mean() - half:.2f}, {min(1.0, final.mean() + half):.2f}]"
    assert dp[9] == "0.600 / 0.500 (last 2) / 0.500 (n=1)" and dp[4] == "1–2"  # one seed on state: no ±
    assert "seeds a-b: the row's tasks have different seed counts" in captured.out
    assert dp[10] == "–"  # no held-out evaluation on state: the final evaluation's success instead, marked
    lo, hi = wilson_ci(1, 2)
    assert dp[11] == f"0.50 [{lo:.2f}, {hi:.2f}] ˡ" and dp[12] == "–"
    assert rows["dpbench/lstm_gmm"][5] == "0.500 / 0.400 (last 2) / 0.400 †" and rows["dpbench/lstm_gmm"][9] == "–"
    assert "ˡ success of the final periodic evaluation" in captured.out
    # not only old records lack a held-out score: one run with train.heldout_episodes=0 does too
    assert "train.heldout_episodes=0" in captured.out
    assert "paper (Chi et al. 2023)/diffusion_cnn" not in rows  # only with --with-paper
    assert "† not the paper's setting" in captured.out and "preset smoke, scripted dataset" in captured.out
    assert not (results / "README.md").exists()  # not the default results dir and no --write-readme


def test_with_paper_rows_follow_each_policy(results, capsys):
    assert main(["table", "--out", str(results), "--with-paper"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")][1:]
    assert [line.split("|")[1].strip() + "/" + line.split("|")[2].strip() for line in lines] == [
        "dpbench/diffusion",
        "paper (Chi et al. 2023)/diffusion_cnn",
        "dpbench/lstm_gmm",
        "paper (Chi et al. 2023)/lstm_gmm",
    ]
    paper = "| 0.95 / 0.91 / – | – | – | – | 0.95 / 0.91 / – | – | – | – |"
    assert paper in lines[1]  # Table I (state-based) for keypoints and state
    assert paper.replace("0.95 / 0.91", "0.67 / 0.61") in lines[3]  # the paper's value even where we have none


def test_formats_and_filters(results, capsys):
    assert main(["table", "--out", str(results), "--format", "csv", "--with-paper", "--policy", "diffusion"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["source"], r["obs"]) for r in rows] == [
        ("dpbench", "keypoints"),
        ("dpbench", "state"),
        ("paper (Chi et al. 2023)", "keypoints"),
        ("paper (Chi et al. 2023)", "state"),
    ]
    assert (
        float(rows[0]["max"]) == pytest.approx(0.8) and rows[0]["seeds"] == "2" and rows[0]["paper_setting"] == "True"
    )
    assert float(rows[0]["avg_last10"]) == round(((0.5 + 0.9 + 0.8) / 3 + (0.6 + 0.7 + 0.7) / 3) / 2, 4)
    assert rows[0]["paper_policy"] == rows[2]["policy"] == "diffusion_cnn"  # joins with --layout paper's rows
    assert rows[1]["seeds"] == "1" and rows[1]["max_std"] == rows[1]["avg_last10_std"] == ""  # no spread, not 0
    # one task's columns fit a page; two tasks' (13 columns) are scaled to the line width
    assert main(["table", "--out", str(results), "--format", "latex", "--obs", "state", "--no-write-readme"]) == 0
    assert capsys.readouterr().out.startswith("\\begin{tabular}")
    assert main(["table", "--out", str(results), "--format", "latex", "--env", "pusht"]) == 0
    latex = capsys.readouterr().out
    assert latex.startswith("\\noindent\\resizebox{\\linewidth}{!}{%\n\\begin{tabular}")
    assert "\\end{tabular}}" in latex and "lstm\\_gmm" in latex
    assert "0.800 $\\pm$ 0.141" in latex and "$^\\dagger$" in latex
    assert main(["table", "--out", str(results), "--format", "html"]) == 0
    page = capsys.readouterr().out
    assert (
        "<th>pusht/keypoints max / avg-last-10 / k-min-loss</th>" in page
        and "<td>0.500 / 0.400 (last 2) / 0.400 &#8224;</td>"
        in page  # the dagger as a character reference: charset-proof
        and page.isascii()
    )
    assert main(["table", "--out", str(results), "--policy", "bet"]) == 2
    err = capsys.readouterr().err
    assert "match --env/--policy/--obs" in err
    assert "they hold envs pusht, policies diffusion, lstm_gmm, obs modes keypoints, state and variants ph" in err
    # a misspelled name is not "no records": the message lists the names that exist
    assert main(["table", "--out", str(results), "--policy", "difusion"]) == 2
    err = capsys.readouterr().err
    assert "unknown policy 'difusion'; valid policies: bc, bet, diffusion, diffusion_cnn" in err
    assert main(["table", "--out", str(results), "--env", "push-t,lift"]) == 2
    assert "unknown env 'push-t'; valid envs: can, lift, pusht, square, tool_hang, transport" in capsys.readouterr().err
    # --obs picks observation modes: the fixture's state-obs record only
    assert main(["table", "--out", str(results), "--obs", "state", "--format", "csv", "--no-write-readme"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert {r["obs"] for r in rows} == {"state"} and len(rows) == 1
    assert main(["table", "--out", str(results), "--obs", "pixels"]) == 2
    assert "unknown obs 'pixels'; valid obs modes: image, keypoints, low_dim, state" in capsys.readouterr().err


def test_corrupt_and_partial_records_are_named_and_skipped(results, capsys):
    records = results / "records"
    (records / "truncated.json").write_text(json.dumps(make_record("bc", 0, [0.1], [False]))[:200])
    partial = make_record("bc", 1, [0.1], [False])
    del partial["final"]["last_eval"]
    (records / "partial.json").write_text(json.dumps(partial))
    assert main(["table", "--out", str(results)]) == 0
    captured = capsys.readouterr()
    warnings = captured.err.splitlines()
    assert len(warnings) == 2
    assert str(records / "partial.json") in warnings[0] and "missing field 'final.last_eval'" in warnings[0]
    assert str(records / "truncated.json") in warnings[1] and "corrupt JSON (Unterminated string" in warnings[1]
    assert all(w.endswith("delete it and rerun its cell") for w in warnings)  # each says what to do
    assert "| dpbench | diffusion |" in captured.out and "| dpbench | bc |" not in captured.out


def test_readme_regenerated_on_request(results, capsys):
    assert main(["table", "--out", str(results), "--write-readme"]) == 0
    assert "README.md" in capsys.readouterr().err
    readme = (results / "README.md").read_text()
    assert "## pusht/keypoints, pusht/state: preset `paper`, human dataset `ab12cd34`" in readme
    assert "## pusht/keypoints: preset `smoke`, scripted dataset `ab12cd34`" in readme
    assert "- command: `dpbench run --policy diffusion --preset paper`" in readme
    assert "hash `ab12cd34ef567890`" in readme and "Test CPU, 2 cores, 1 torch threads" in readme
    assert "- dates: 2026-01-01T00:00:00+00:00 to 2026-01-02T00:00:00+00:00" in readme
    assert readme.count("| paper (Chi et al. 2023) |") == 2
    assert "diffusion pusht/keypoints " in readme and " [unrecorded]" not in readme  # no record names a CPU kind


def test_readme_names_the_cpu_kinds_behind_minutes_per_seed(results):
    # seed 1 ran on an AVX2 machine, seed 0 before records said: the mean minutes mix kinds, and the README says so
    path = next((results / "records").glob("*diffusion*paper*seed1.json"))
    record = json.loads(path.read_text())
    record["hardware"]["cpu_capability"] = "AVX2"
    write_json_atomic(path, record)
    assert main(["table", "--out", str(results), "--write-readme"]) == 0
    readme = (results / "README.md").read_text()
    assert re.search(r"diffusion pusht/keypoints [0-9.]+\S* \[AVX2\+unrecorded\],", readme)
    # the state-obs group and the LSTM-GMM group hold no AVX2 record: no mark
    assert re.search(r"diffusion pusht/state [0-9.]+\S*$", readme, re.M)
    assert re.search(r"lstm_gmm pusht/keypoints [0-9.]+\S*$", readme, re.M)


def test_one_simd_level_on_two_cpu_generations_is_two_kinds_in_the_tables(results):
    # a Zen 4 (25/17) and a Zen 5 (26/2) both run AVX-512 but train at about half and full speed: the README's
    # minutes and the equal-time table name them apart (host.cpu_kind)
    for seed, family in ((0, "25/17"), (1, "26/2")):
        path = next((results / "records").glob(f"pusht-keypoints__diffusion__*paper*seed{seed}.json"))
        record = json.loads(path.read_text())
        record["hardware"].update(cpu_capability="AVX512", cpu_family=family)
        write_json_atomic(path, record)
    assert main(["table", "--out", str(results), "--write-readme"]) == 0
    readme = (results / "README.md").read_text()
    assert re.search(r"diffusion pusht/keypoints [0-9.]+\S* \[AVX512 25/17\+AVX512 26/2\],", readme)
    recs = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    table = equal_time_table(group_records(recs))
    assert [row[4] for row in table.rows if "AVX512" in row[4]] == ["AVX512 25/17+AVX512 26/2"]


def test_a_cell_resumed_on_another_kind_of_cpu_names_both_kinds(results):
    path = next((results / "records").glob("pusht-keypoints__diffusion__*paper*seed0.json"))
    record = json.loads(path.read_text())
    record["hardware"].update(cpu_capability="AVX2", cpu_family="23/1")
    record["wall"]["processes"] = [
        {"from_step": 0, "cpu_kind": "AVX512 25/17", "device": "cpu"},
        {"from_step": 900, "cpu_kind": "AVX2 23/1", "device": "cpu"},
    ]
    recs = [json.loads(p.read_text()) for p in (results / "records").glob("*.json") if p != path] + [record]
    table = equal_time_table(group_records(recs))
    (kinds,) = [row[4] for row in table.rows if "23/1" in row[4]]  # the group's other seeds name no kind
    assert kinds.split("+") == ["AVX2 23/1", "AVX512 25/17", "unrecorded"]


def test_the_latency_legend_names_the_cpu_kinds(results, tmp_path, monkeypatch):
    # a chunk's latency is a time: a group whose seeds ran on an AVX2 machine and an unrecorded one says so
    import dpbench.plots as plots

    path = next((results / "records").glob("*diffusion*paper*seed1.json"))
    record = json.loads(path.read_text())
    record["hardware"]["cpu_capability"] = "AVX2"
    write_json_atomic(path, record)
    for path in (results / "records").glob("pusht-keypoints__diffusion__*.json"):  # DP executes 8 actions a chunk
        record = json.loads(path.read_text())
        record["config"]["policy"]["n_action_steps"] = 8
        write_json_atomic(path, record)
    seen: list[tuple[list[str], list[float]]] = []

    def keep_legend(fig, stem):
        ax = fig.axes[0]
        seen.append(
            ([t.get_text() for t in ax.get_legend().get_texts()], [c.lines[0].get_xdata()[0] for c in ax.containers])
        )
        return []

    monkeypatch.setattr(plots, "_save", keep_legend)
    recs = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    plots.plot_latency(group_records(recs), tmp_path / "latency")
    ((legend, xs),) = seen
    assert legend == [
        "diffusion, pusht/keypoints, T_a=8 (AVX2+unrecorded)",
        "diffusion, pusht/state, T_a=1 (CPU kind unrecorded)",  # no kind at all is said too, not left blank
        "lstm_gmm, pusht/keypoints, T_a=1 (CPU kind unrecorded)",
    ]
    # x: time per executed action. The fixture's evaluations took latency + i ms: DP keypoints 10, 11, 12 ms a
    # chunk over 8 actions; lstm_gmm 2, 3 ms over 1
    assert xs[0] == pytest.approx(11 / 8) and xs[2] == pytest.approx(2.5)


def test_figure_labels_tell_apart_two_versions_of_one_policy():
    # one policy file before and after an edit: same preset, data and config, two config hashes
    from dpbench.figure_text import config_labels

    recs = [make_record("my_policy:Lin", s, [0.5], [True]) for s in (0, 1)]
    recs[0]["config_hash"], recs[1]["config_hash"] = "111111aaaa", "222222bbbb"
    labels = sorted(config_labels(group_records(recs)).values())
    assert labels == ["my_policy:Lin (111111)", "my_policy:Lin (222222)"]


def test_the_scores_figure_shows_the_tables_success(results):
    # the fixture's keypoints DP seeds have held-out evaluations (success 1/3 and 2/3 of 3 episodes each, pooled 3/6)
    # whose success differs from their final periodic evaluations' (2/4 and 1/4): the figure shows the former
    recs = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    groups = {(g.policy, g.obs): g for g in group_records(recs)}
    dp = groups[("diffusion", "keypoints")]
    assert dp.shown_success == (dp.heldout.success, dp.heldout.success_ci) and dp.heldout.success != dp.success
    assert dp.shown_success[0] == pytest.approx(0.5) and dp.success == pytest.approx((0.5 + 0.25) / 2)
    old = groups[("diffusion", "state")]  # no held-out evaluation: the final periodic one
    assert old.heldout is None and old.shown_success == (old.success, old.success_ci)


def test_plots_are_written_as_png_and_svg(results, tmp_path, capsys):
    figdir = tmp_path / "figs"
    assert main(["plot", "--out", str(results), "--figdir", str(figdir)]) == 0
    written = capsys.readouterr().out.split()
    names = sorted(Path(p).name for p in written)
    stems = (
        "scores",
        "curves_pusht-keypoints",
        "curves_pusht-state",
        "latency",
        "equal_time_pusht-keypoints",
        "equal_time_pusht-state",
    )
    assert names == sorted(f"{stem}.{ext}" for stem in stems for ext in ("png", "svg"))
    for p in written:
        data = Path(p).read_bytes()
        assert len(data) > 5000 and (data[:4] == b"\x89PNG" or b"<svg" in data[:500])


def test_a_selections_figures_never_overwrite_the_whole_results(results, capsys):
    assert main(["plot", "--out", str(results), "--policy", "diffusion"]) == 0
    written = [Path(p) for p in capsys.readouterr().out.split()]
    assert written and all(p.parent == results / "figures" / "selection_policy-diffusion" for p in written)
    assert not (results / "figures" / "scores.png").exists()


def test_groups_never_mix_datasets(results):
    recs = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    other = make_record("diffusion", 2, [0.1], [False])
    other["dataset"]["hash"] = "ffff000011112222"
    groups = group_records(recs + [other])
    assert sorted((g.policy, g.obs, g.seeds, g.dataset_hash[:4]) for g in groups) == [
        ("diffusion", "keypoints", 1, "ffff"),
        ("diffusion", "keypoints", 2, "ab12"),
        ("diffusion", "state", 1, "ab12"),
        ("lstm_gmm", "keypoints", 1, "ab12"),
    ]
    table = format_table(recs + [other])
    assert "| dpbench | diffusion | paper (diffpapcfg) | human:ab12cd34 |" in table
    assert "| dpbench | diffusion | paper (diffpapcfg) | human:ffff0000 |" in table


def _scripted(seed: int, data_hash: str, steps: int = 32177) -> dict:
    r = make_record("diffusion", seed, [0.5, 0.6], [True], obs="low_dim", dataset="scripted")
    r["env"] = "square"
    r["dataset"] = {
        "kind": "scripted",
        "path": "$DPBENCH_CACHE/robomimic_square_ph_v4_200ep.hdf5",
        "hash": data_hash,
        "episodes": 200,
        "steps": steps,
    }
    r["cell_id"] = f"square-low_dim__diffusion__scripted-{data_hash[:8]}__paper-{r['config_hash']}__seed{seed}"
    return r


def test_seeds_on_scripted_demos_collected_on_other_cpus_are_one_group():
    # The same seeded collection hashes differently where numpy/OpenBLAS pick other SIMD kernels; its recipe
    # (kind, file name, episode and step counts) is what makes it the same demonstrations.
    recs = [_scripted(0, "f38222057e878bde"), _scripted(1, "d0f7a3f01c4adaf3"), _scripted(2, "d0f7a3f01c4adaf3")]
    (group,) = group_records(recs)
    assert group.seeds == 3 and group.dataset_hash == "f38222057e878bde+d0f7a3f01c4adaf3"
    assert short_hash(group.dataset_hash) == "f3822205+d0f7a3f0"
    # results/README.md's section says what '+' joins, as the paper layout's ʳ does; one collection needs no word
    from dpbench.report import results_readme

    assert "hash `f38222057e878bde+d0f7a3f01c4adaf3`, 200 episodes, 32177 steps ('+' joins separate collections" in (
        results_readme(recs)
    )
    assert "'+' joins" not in results_readme(recs[1:])
    # another step count is another collection: never pooled, whatever the name
    assert sorted(g.seeds for g in group_records([*recs, _scripted(3, "d0f7a3f01c4adaf3", steps=32000)])) == [1, 3]
    # a dataset given by path or a human one is identified by its hash alone
    human = [make_record("diffusion", s, [0.5], [True]) for s in (0, 1)]
    human[1]["dataset"]["hash"] = "ffff000011112222"
    assert len(group_records(human)) == 2


def test_a_cell_recorded_on_another_collection_of_the_same_demos_is_found(tmp_path):
    records = tmp_path / "records"
    elsewhere = _scripted(1, "f38222057e878bde")
    write_json_atomic(records / f"{elsewhere['cell_id']}.json", elsewhere)
    here = records / "square-low_dim__diffusion__scripted-d0f7a3f0__paper-diffpapcfg__seed1.json"
    same = {k: elsewhere["dataset"][k] for k in ("kind", "path", "episodes", "steps")}
    assert record_of_same_demos(here, "scripted", same) == records / f"{elsewhere['cell_id']}.json"
    assert record_of_same_demos(here, "scripted", {**same, "steps": 32000}) is None  # other demonstrations
    seed2 = records / "square-low_dim__diffusion__scripted-d0f7a3f0__paper-diffpapcfg__seed2.json"
    assert record_of_same_demos(seed2, "scripted", same) is None  # another seed is another cell
    # a prepared cell on this machine's collection is done: its record_path is the other collection's record
    from types import SimpleNamespace

    from dpbench.data.registry import DatasetRef
    from dpbench.runner import CellSpec, PreparedCell

    store = SimpleNamespace(n_episodes=200, n_steps=32177, data={})
    data = DatasetRef("scripted", Path("/cache/robomimic_square_ph_v4_200ep.hdf5"), store)
    spec = CellSpec("diffusion", "square", 1, preset="paper", out=tmp_path)
    cell = PreparedCell(spec, "low_dim", None, None, None, data, here.stem, "diffpapcfg")
    assert cell.record_path == records / f"{elsewhere['cell_id']}.json"
    assert cell.own_record_path == here  # what run_cell writes: never the other collection's file
    # both collections' cells share one lock, so two kinds of CPU sharing OUT never train the cell twice at once
    other = PreparedCell(spec, "low_dim", None, None, None, data, Path(elsewhere["cell_id"]).stem, "diffpapcfg")
    assert cell.lock_dir == other.lock_dir != cell.workdir
    # the same demos under another kind (mh, delta actions) are other demonstrations
    mh = {**elsewhere, "dataset": {**elsewhere["dataset"], "kind": "scripted-mh"}}
    mh["cell_id"] = elsewhere["cell_id"].replace("__scripted-", "__scripted-mh-")
    (records / f"{elsewhere['cell_id']}.json").unlink()
    write_json_atomic(records / f"{mh['cell_id']}.json", mh)
    assert record_of_same_demos(here, "scripted", same) is None and cell.record_path == here


def test_a_seed_recorded_on_two_collections_counts_once():
    old, new = _scripted(0, "f38222057e878bde"), _scripted(0, "d0f7a3f01c4adaf3")
    new["date"], new["final"]["max"] = "2026-12-01T00:00:00+00:00", 0.1
    (group,) = group_records([new, old, _scripted(1, "d0f7a3f01c4adaf3")])
    assert group.seeds == 2 and group.max == 0.6  # seed 0 by its oldest record (max 0.6), seed 1 (0.6)


def test_overrides_column_is_the_drift_from_todays_preset():
    """A record made under an older preset is labelled with how it differs from the preset as defined now;
    one that matches today's preset (however it was launched) is not; a policy that no longer loads keeps
    its recorded --set overrides. The drift is written in --set syntax, so it can be pasted back."""
    from dpbench.config import build_configs, config_to_dict
    from dpbench.policies import get_policy_class

    def with_config(seed: int, widths: list[int] | None = None, **train: int) -> dict:
        rec = make_record("bc", seed, [0.5], [False], obs="image", preset="quick")
        pcfg, tcfg = build_configs(get_policy_class("bc"), "quick", image_obs=True)
        policy = config_to_dict(pcfg)
        policy["vision"]["widths"] = widths or policy["vision"]["widths"]
        rec["config"] = {
            "policy": policy,
            "train": {**config_to_dict(tcfg), **train},
            "overrides": {"train.steps": str(tcfg.steps)},
        }
        rec["config_hash"] = f"cfg{len(train)}"
        return rec

    current, older = with_config(0), with_config(1, widths=[8, 16], steps=123, eval_every=7)
    unknown = make_record("no_such_policy", 0, [0.5], [False])
    unknown["config"] = {"policy": {"x": 1}, "train": {"steps": 5}, "overrides": {"train.steps": "5"}}
    drift = {(g.policy, g.config_hash): g.overrides for g in group_records([current, older, unknown])}
    assert drift == {
        ("bc", "cfg0"): "",
        ("bc", "cfg2"): "policy.vision.widths=8,16, train.eval_every=7, train.steps=123",
        ("no_such_policy", "no_spapcfg"): "train.steps=5",
    }
    # A record made under an older evaluation protocol says so first.
    old_protocol = dict(current, protocol=1)
    assert group_records([old_protocol])[0].overrides == "protocol v1"
    pasted = dict(item.split("=", 1) for item in drift[("bc", "cfg2")].split(", "))
    pcfg, tcfg = build_configs(get_policy_class("bc"), "quick", pasted, image_obs=True)
    assert {"policy": config_to_dict(pcfg), "train": config_to_dict(tcfg)} == {
        k: older["config"][k] for k in ("policy", "train")
    }


def test_committed_results_carry_no_absolute_paths():
    """Provenance names datasets by identity and hash; paths are relative to the checkout, the cache
    ($DPBENCH_CACHE) or the results dir, never a machine's absolute path."""
    root = Path(__file__).resolve().parents[1] / "results"

    def strings(x):
        if isinstance(x, dict):
            for v in x.values():
                yield from strings(v)
        elif isinstance(x, list):
            for v in x:
                yield from strings(v)
        elif isinstance(x, str):
            yield x

    paths = sorted(root.rglob("*.json"))  # records, superseded records, curves and benchmark results
    assert paths
    for p in paths:
        bad = [s for s in strings(json.loads(p.read_text())) if s.startswith("/") or " /" in s]
        assert not bad, f"{p.name}: {bad[:3]}"


def test_record_schema_writes_what_committed_records_hold():
    """``Record(...).to_dict()`` is the record format: rebuilt from its parts, every committed record of the
    current layout comes out with the same keys, in the same order, and the same values."""
    from dpbench.records import DataSplit, FinalScores, Record, WallTimes

    rebuilt = 0
    for path in sorted((Path(__file__).resolve().parents[1] / "results" / "records").glob("*.json")):
        rec = json.loads(path.read_text())
        if "dataset_check" not in rec or "heldout" not in rec["final"] or "contention" not in rec["wall"]:
            continue  # made before the layout had these fields
        split, final, wall = rec["data_split"], rec["final"], rec["wall"]
        record = Record(
            cell_id=rec["cell_id"],
            command=rec["command"],
            policy=rec["policy"],
            env=rec["env"],
            obs=rec["obs"],
            action_mode=rec["action_mode"],
            seed=rec["seed"],
            preset=rec["preset"],
            config_hash=rec["config_hash"],
            policy_config=rec["config"]["policy"],
            train_config=rec["config"]["train"],
            overrides=rec["config"]["overrides"],
            dataset=rec["dataset"],
            dataset_check=rec["dataset_check"],
            data_split=DataSplit(
                split["split_seed"],
                split["val_ratio"],
                split["max_train_episodes"],
                split["train_episodes"],
                split["val_episodes"],
            ),
            history=rec["history"],
            final=FinalScores(
                final["max"],
                final["avg_last10"],
                final["k_min_train_loss"],
                final["success_max"],
                final["success_avg_last10"],
                final["last_eval"],
                final["heldout"],
            ),
            wall=WallTimes(
                wall["train_s"],
                wall["eval_s"],
                wall["total_s"],
                wall["contention"]["train"],
                wall["contention"]["eval"],
                wall.get("processes", []),
            ),
            checkpoint=rec["checkpoint"],
            versions=rec["versions"],
            hardware=rec["hardware"],
            date=rec["date"],
            schema=rec["schema"],
            protocol=rec["protocol"],
        )
        assert json.dumps(record.to_dict(), indent=1) == json.dumps(rec, indent=1), path.name
        rebuilt += 1
    assert rebuilt


def test_rerun_section_pairs_superseded_groups_with_todays(tmp_path):
    from dpbench.reruns import rerun_section

    old = [make_record("diffusion", s, [0.9, 0.95], [True, False]) for s in range(2)]
    new = [make_record("diffusion", s, [0.8, 0.85], [False, False]) for s in range(2)]
    other = [dict(make_record("bc", 0, [0.3], [False]), config_hash="other")]
    for r in old + other:
        write_json_atomic(tmp_path / "superseded" / "fix-a" / f"{r['cell_id']}-{r['config_hash']}.json", r)
    text = rerun_section(tmp_path, new)
    assert "superseded/fix-a" in text
    assert "| pusht/keypoints | diffusion | superseded | human ab12cd34 | 200 | 0.950 ± 0.000 / 0.925 ± 0.000 |" in text
    assert "| pusht/keypoints | diffusion | **now** | human ab12cd34 | 200 | 0.850 ± 0.000 / 0.825 ± 0.000 |" in text
    assert "| bc |" not in text  # nothing replaced it: not a rerun
    assert rerun_section(tmp_path / "empty", new) == ""

    # A fix that moved LSTM-GMM from absolute to delta actions: today holds a 1-seed rerun in absolute actions
    # (even one on the old collection) and 3 seeds in delta. The delta group, the paper's action space for
    # LSTM-GMM, stands for today (the table layout's choice), not whichever group came last; scripted-mh demos,
    # and scripted demos of the mh variant, are other cells.
    def lift(seed: int, scores: list[float], kind: str, data: str = "ab12cd34ef567890", variant: str = "ph") -> dict:
        r = make_record("lstm_gmm", seed, scores, [False], obs="low_dim", preset="quick", dataset=kind)
        mode = "delta" if kind.endswith("-delta") else "abs"
        dataset = {**r["dataset"], "kind": kind, "hash": data, "variant": variant}
        return {**r, "env": "lift", "action_mode": mode, "dataset": dataset}

    old_hash = "0ld0c011ec710000"  # the old demonstrators' collection
    for r in [lift(s, [0.6], "scripted", old_hash) for s in range(3)]:
        write_json_atomic(tmp_path / "superseded" / "fix-b" / f"{r['cell_id']}-{r['seed']}.json", r)
    today = [lift(0, [0.02], "scripted"), {**lift(0, [0.7], "scripted", old_hash), "config_hash": "other"}]
    today += [lift(s, [1.0], "scripted-delta") for s in range(3)]
    mh = lift(0, [0.4], "scripted-delta", "3b3b3b3b00000000", variant="mh")  # a human mh file given by path, say
    others = [lift(0, [0.3], "scripted-mh-delta"), {**mh, "dataset": {**mh["dataset"], "path": "/data/mh.hdf5"}}]
    text = rerun_section(tmp_path, new + today + others)
    assert "| lift/low_dim | lstm_gmm | superseded | scripted 0ld0c011 | 100 | 0.600 ± 0.000 / 0.600 ± 0.000 |" in text
    assert "| lift/low_dim | lstm_gmm | **now** | scripted-delta ab12cd34 | 100 | 1.000 ± 0.000 / 1.000" in text
    assert not any(x in text for x in ("0.020", "0.700", "0.300", "0.400"))
    # within one action space, a rerun on the superseded group's own collection stands for today (the fix
    # alone changed), ahead of more seeds on another collection
    out = tmp_path / "c"
    for r in [lift(s, [0.6], "scripted-delta", old_hash) for s in range(3)]:
        write_json_atomic(out / "superseded" / "fix-c" / f"{r['cell_id']}-{r['seed']}.json", r)
    same = {**lift(0, [0.8], "scripted-delta", old_hash), "config_hash": "other"}
    text = rerun_section(out, [*(lift(s, [0.9], "scripted-delta") for s in range(3)), same])
    assert "| lift/low_dim | lstm_gmm | **now** | scripted-delta 0ld0c011 | 100 | 0.800 / 0.800 | " in text
    # (one seed: the mean alone, as the pivot and paper layouts print it; a sample std needs two seeds)
    # each row says how long its runs trained: a superseded folder can hold longer runs than today's preset
    long = [{**r, "history": [{**h, "step": 20_000} for h in r["history"]]} for r in today[2:]]
    assert "| scripted-delta ab12cd34 | 20,000 |" in rerun_section(tmp_path, long)


def test_timing_from_contended_runs_is_marked():
    from dpbench.report import results_readme
    from dpbench.tables import tidy_rows

    quiet = [make_record("bc", s, [0.5], [False]) for s in range(2)]
    busy = [make_record("bet", s, [0.5], [False]) for s in range(2)]
    for r in quiet:
        r["wall"]["contention"] = {"train": {"contended": False}, "eval": {"contended": False}}
    busy[1]["wall"]["contention"] = {"train": {"contended": True, "others_cores": 1.2}, "eval": {"contended": False}}
    groups = {g.policy: g for g in group_records(quiet + busy)}
    assert groups["bc"].contended is False and groups["bet"].contended is True
    text = results_readme(quiet + busy)
    assert "bet pusht/keypoints 1.1*" in text  # 66 s per seed, shared cores
    assert "bc pusht/keypoints 1.1," in text
    assert {r["policy"]: r["timing_contended"] for r in tidy_rows(group_records(quiet + busy))} == {
        "bc": False,
        "bet": True,
    }
    assert group_records([make_record("ibc", 0, [0.5], [False])])[0].contended is None  # not measured


def test_k_min_train_loss_is_the_originals_aggregation():
    """A second implementation of the original's multirun_metrics.compute_metrics: the mean score of the 10
    evaluations with the lowest train_loss, over 14 evaluations whose loss order differs from their time order."""
    from dpbench.metrics import summarize_history

    rng = np.random.default_rng(3)
    scores, losses = rng.uniform(0.3, 0.9, 14), rng.uniform(0.01, 0.1, 14)
    history = [
        {"step": i, "score": float(s), "loss": 9.0, "train_loss": float(loss)}
        for i, (s, loss) in enumerate(zip(scores, losses))
    ]
    lowest = sorted(range(14), key=lambda i: losses[i])[:10]
    expected = sum(scores[i] for i in lowest) / 10
    out = summarize_history(history)
    assert out["k_min_train_loss"] == pytest.approx(expected)
    assert out["avg_last10"] == pytest.approx(scores[4:].mean()) and out["max"] == pytest.approx(scores.max())
    assert out["k_min_train_loss"] != pytest.approx(out["avg_last10"])  # the choice matters on this history
    # records from before train_loss existed rank by the last batch's loss
    old = [{"score": h["score"], "loss": h["train_loss"]} for h in history]
    assert summarize_history(old)["k_min_train_loss"] == pytest.approx(expected)


def test_score_at_equal_cpu_time(results):
    """The equal-CPU-time view, worked by hand from the fixture: seed s evaluates at 30k + s seconds (k = 1, 2, 3) on
    1 thread, so within 1 CPU-minute seed 0 has scored 0.5 and 0.9, seed 1 only 0.6 (its second evaluation is at
    61 s); nothing is evaluated within 0.25 min; by 2 min both runs have ended (whole-run max 0.9 and 0.7)."""
    from dpbench.equal_time import equal_time_table

    recs = [json.loads(p.read_text()) for p in (results / "records").glob("*.json")]
    dp = [g for g in group_records(recs) if g.policy == "diffusion" and g.obs == "keypoints"]
    table = equal_time_table(dp, minutes=(0.25, 1.0, 2.0))
    assert table.rows == [["diffusion", "paper", "diffpapcfg", "2", "unrecorded", "–", "0.750", "0.800 ᵉ", "1.5"]]
    assert not any("compare rows of one kind" in n for n in table.notes)
    two_threads = [dict(r, hardware={**r["hardware"], "torch_threads": 2}) for r in dp[0].records]
    # 2 threads double the CPU-minutes: within 1 CPU-minute only the first evaluations (1.0 and 1.03 CPU-min) count
    assert equal_time_table(group_records(two_threads), minutes=(1.0,)).rows[0][5] == "–"
    assert equal_time_table(group_records(two_threads), minutes=(1.04,)).rows[0][5] == "0.550"
    # a record that measured the cores its training kept busy counts those, not its threads (which only bound
    # them): 2 threads that kept one core busy cost as 1 thread did, as in the dry run's estimates
    measured = [dict(r, wall={**r["wall"], "contention": {"train": {"own_cores": 1.0}}}) for r in two_threads]
    assert equal_time_table(group_records(measured), minutes=(1.0,)).rows[0][5] == "0.750"
    # only training's cores count, and a record without a training measurement is costed at its threads
    eval_only = [dict(r, wall={**r["wall"], "contention": {"eval": {"own_cores": 1.0}}}) for r in two_threads]
    assert equal_time_table(group_records(eval_only), minutes=(1.0,)).rows[0][5] == "–"
    # a CPU-minute buys less work on an AVX2 machine than on an AVX-512 one: the row names both, and a note says so
    mixed = [
        dict(r, hardware={**r["hardware"], "cpu_capability": k}) for r, k in zip(dp[0].records, ("AVX2", "AVX512"))
    ]
    table = equal_time_table(group_records(mixed), minutes=(1.0,))
    assert table.rows[0][4] == "AVX2+AVX512" and any("compare rows of one kind" in n for n in table.notes)
    gpu = [dict(r, hardware={**r["hardware"], "device": "NVIDIA H200"}) for r in dp[0].records]
    assert equal_time_table(group_records(gpu)).rows == []  # GPU minutes are another currency
    # the figure draws what the table reads: each seed's best so far (seed 0 scores 0.5, 0.9, 0.8; seed 1 0.6, 0.7,
    # 0.7), so the mean line never falls where a seed's score does: 0.55, 0.8, 0.8, not 0.55, 0.8, 0.75
    from dpbench.equal_time import cpu_minutes
    from dpbench.plots import _curve

    _, _, mean, lo, hi = _curve(dp[0], dp[0].records, cpu_minutes, best_so_far=True)
    assert mean.tolist() == pytest.approx([0.55, 0.8, 0.8]) and lo.tolist() == pytest.approx([0.5, 0.7, 0.7])
    assert hi.tolist() == pytest.approx([0.6, 0.9, 0.9])
    assert equal_time_table(dp, minutes=(1.5,)).rows[0][5] == f"{mean[2]:.3f}"  # seed 0 at 90, seed 1 at 91 s


def test_results_readme_lists_the_knees(results, capsys):
    knees = {
        "rule": "first evaluated step whose running max >= 0.95 x the run's max",
        "policies": {
            "bet": {
                "run_steps": 40000,
                "run_train_min": 10.0,
                "run_max": 0.719,
                "knee_step": 30000,
                "knee_train_min": 7.7,
                "running_max_at_knee": 0.719,
            }
        },
    }
    (results / "knees").mkdir()
    (results / "knees" / "knees.json").write_text(json.dumps(knees))
    assert main(["table", "--out", str(results), "--write-readme"]) == 0
    readme = (results / "README.md").read_text()
    assert "## Knees: where each policy's quick budget comes from" in readme
    # the last column is the quick preset as defined today (baselines/bet.py: budget(30_000, ...)), not knees.json's
    assert "| bet | 40000, 10.0 | 0.719 | 30000 | 7.7 | 0.719 | 30000 |" in readme


def test_minutes_per_seed_count_every_process_of_a_resumed_run():
    # an old record of a resumed run kept only its last process's total: 10 min, below its own 20 min of training.
    # The cell's work is at least its training plus every evaluation in it: 20 + 3 x 1 (periodic) + 2 (held-out) min
    from dpbench.records import cell_seconds
    from dpbench.results import group_records

    rec = make_record(
        "ibc", 0, [0.1, 0.2, 0.3], [True], heldout={**make_heldout([1.0], [True], [1.0]), "wall_s": 120.0}
    )
    rec["wall"] = {"train_s": 1200.0, "eval_s": 60.0, "total_s": 600.0}
    for h in rec["history"]:
        h["eval_seconds"] = 60.0
    assert cell_seconds(rec) == 1200.0 + 3 * 60.0 + 120.0
    assert group_records([rec])[0].minutes_per_seed == pytest.approx(25.0)
    # a whole run's total (data loading and checkpoints included) stands when it is the larger
    rec["wall"]["total_s"] = 2000.0
    assert cell_seconds(rec) == 2000.0


def test_latex_keeps_an_options_two_hyphens_and_sets_a_dash_as_one():
    # LaTeX sets "--" as an en dash: "--obs" must come out as two hyphens, "–" (an en dash) as "--"
    table = Table(["a"], [["x"]], ["run dpbench table --obs low_dim; seeds 0–2; a -> b"])
    latex = render_latex(table)
    assert "-{}-obs" in latex and "--obs" not in latex and "0--2" in latex and "a -\\textgreater{} b" in latex


def test_latex_escapes_every_non_ascii_character_dpbench_can_print():
    # pdflatex stops at a raw Unicode mark it has no definition for (the paper layout's ʳ and ↗ once came out raw):
    # every non-ASCII character in dpbench's sources, marks and symbols alike, must render as ASCII LaTeX
    import dpbench

    root = Path(dpbench.__file__).parent
    chars = {ch for p in root.rglob("*.py") for ch in re.findall(r"[^\x00-\x7f]", p.read_text(encoding="utf-8"))}
    assert {"ʳ", "↗", "ⁱ", "±"} <= chars  # the scan sees the marks the tables print
    raw = {ch for ch in chars if not render_latex(Table(["a"], [[f"x{ch}y"]], [f"{ch} note"])).isascii()}
    assert not raw, f"characters left raw in LaTeX: {sorted(raw)}"


def _on_lift(record: dict, action_mode: str) -> dict:
    """A Push-T record moved to Lift low-dim in ``action_mode`` (abs: DP's paper setting; delta: the baselines')."""
    old = f"pusht-{record['obs']}__"
    r = {**record, "env": "lift", "obs": "low_dim", "cell_id": record["cell_id"].replace(old, "lift-low_dim__")}
    return {**r, "action_mode": action_mode, "dataset": {**record["dataset"], "kind": "scripted"}}


def test_figures_mark_cells_unlike_the_paper_and_name_each_tasks_score(tmp_path):
    # The paper trained LSTM-GMM in delta actions (Chi et al. 2023, its robomimic configs): an abs-action run and a
    # run under an older protocol get no paper marker and say why; a delta run under today's protocol gets one.
    from dpbench.figure_text import paper_marker, score_label, unlike_paper
    from dpbench.plots import _colors, plot_all

    delta = _on_lift(make_record("lstm_gmm", 0, [0.9], [True]), "delta")
    absolute = _on_lift(make_record("lstm_gmm", 1, [0.1], [False], preset="quick"), "abs")
    older = {**make_record("diffusion", 0, [0.5], [True]), "protocol": 1}
    groups = {(g.policy, g.env): g for g in group_records([delta, absolute, older])}
    lift = [g for g in group_records([delta, absolute]) if g.env == "lift"]
    by_mode = {g.records[0]["action_mode"]: g for g in lift}
    assert unlike_paper(by_mode["delta"]) == "" and paper_marker(by_mode["delta"])["max"] == 1.0  # Table I: 1.00
    assert unlike_paper(by_mode["abs"]) == " [abs actions]" and paper_marker(by_mode["abs"]) is None
    assert unlike_paper(groups[("diffusion", "pusht")]) == " [protocol v1]"
    # robomimic scores a success rate, Push-T the mean of each episode's max reward; a mixed axis says both
    assert score_label(["lift"]) == "score\n(success rate)"
    assert score_label(["pusht"], " ") == "score (mean episode max reward)"
    assert "success rate" in score_label(["lift", "pusht"]) and "Push-T" in score_label(["lift", "pusht"])
    written = plot_all([delta, absolute], tmp_path)
    svg = next(p for p in written if p.name == "curves_lift-low_dim.svg").read_text()
    assert "(success rate)" in svg and "max reward" not in svg and "[abs actions]" in svg
    scores = next(p for p in written if p.name == "scores.svg").read_text()
    assert "[abs actions]" in scores and "neither gets a paper marker" in scores
    # the paper's DP-C Push-T number came from inpainting (Table I's note): its marker carries the tables' ⁱ
    dp = make_record("diffusion", 0, [0.8], [True])
    scores = next(p for p in plot_all([dp], tmp_path / "dp") if p.name == "scores.svg").read_text()
    assert "diffusion ⁱ" in scores and "inpainting" in scores
    # more names than tab20 has colours: each its own, and one policy's neighbours in the legend far apart
    colors = _colors([f"p{i:02d}" for i in range(29)])
    assert len(set(colors.values())) == 29
    rgb = [np.array(colors[f"p{i:02d}"][:3]) for i in range(29)]
    assert min(np.linalg.norm(rgb[i] - rgb[i + 1]) for i in range(28)) > 0.3  # an even ramp's neighbours: 0.08


def test_the_csv_success_is_the_tables_and_the_latex_aligns_the_labels(results, capsys):
    # The fixture's keypoints DP has held-out evaluations: 1 + 2 successes over 3 + 3 episodes (mean over seeds 0.5),
    # while its final periodic ones had 2/4 and 1/4. The pivot shows the former, so the CSV's success must too.
    assert main(["table", "--out", str(results), "--format", "csv", "--no-write-readme"]) == 0
    rows = {(r["policy"], r["obs"]): r for r in csv.DictReader(io.StringIO(capsys.readouterr().out))}
    dp = rows[("diffusion", "keypoints")]
    # Wilson's 95% interval for 3 of 6, by its formula (not dpbench.metrics)
    z, n, k = 1.959964, 6, 3
    centre, half = (k / n + z * z / (2 * n)), z * np.sqrt(k / n * (1 - k / n) / n + z * z / (4 * n * n))
    lo, hi = (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)
    assert (float(dp["success"]), dp["success_source"]) == (0.5, "heldout")
    assert (float(dp["success_ci_low"]), float(dp["success_ci_high"])) == (round(lo, 4), round(hi, 4))
    assert float(dp["heldout_success_ci_low"]) == round(lo, 4)
    assert float(dp["last_eval_success"]) == (0.5 + 0.25) / 2 and dp["last_eval_episodes"] == "8"
    assert dp["variant"] == "ph" and dp["heldout_final"] != ""  # Push-T: the final coverage
    old = rows[("diffusion", "state")]  # no held-out evaluation: the final periodic one, said so
    assert old["success_source"] == "last_eval" and old["success"] == old["last_eval_success"] == "0.5"
    # a robomimic task has no coverage: its held-out final is empty, not a copy of the success
    lift = {**make_record("diffusion", 0, [0.9], [True], heldout=make_heldout([1.0, 0.0], [True, False], [1, 0]))}
    lift |= {"env": "lift", "obs": "low_dim", "cell_id": lift["cell_id"].replace("pusht-keypoints", "lift-low_dim")}
    (row,) = csv.DictReader(io.StringIO(format_table([lift], "csv")))
    assert row["heldout_final"] == "" and row["heldout_success"] == "0.5"
    # LaTeX: the label columns (source, policy, preset, dataset, seeds) left, the scores centred
    latex = format_table([json.loads(p.read_text()) for p in (results / "records").glob("*.json")], "latex")
    assert r"\begin{tabular}{lllll" + "c" * 8 + "}" in latex  # 4 per Push-T task (final coverage too)


def test_the_committed_results_readme_is_what_the_code_writes():
    # results/README.md is generated from the committed records; a change to the tables' code or a new record
    # must come with it regenerated, or the committed page shows numbers in a form the code no longer writes
    from dpbench.report import results_readme_text
    from dpbench.results import load_all

    out = Path(__file__).parents[1] / "results"
    want = results_readme_text(out, load_all(out))
    assert want == (out / "README.md").read_text(), "stale: regenerate it with `dpbench table --out results`"


def test_the_k_min_loss_note_counts_only_runs_that_can_tell_it_from_avg_last_10():
    # With 10 or fewer evaluations, k-min-loss and avg-last-10 both average all of them: equal by construction,
    # so they must not count as evidence that the two agree. 12 evaluations at one loss: k-min-loss takes the
    # first 10 (a stable sort), (0 + 0.5 + 8 x 1) / 10 = 0.85, against avg-last-10 1.0.
    short = [make_record("diffusion", s, [0.5, 0.6, 0.7, 0.8], [True]) for s in range(2)]
    long = make_record("ibc", 0, [0.0, 0.5] + [1.0] * 10, [True])
    text = format_table([*short, long], "md")
    assert "it equals avg-last-10 in 0 of the 1 records here with more than 10 evaluations)" in text
    assert "records here" not in format_table(short, "md")
