"""`dpbench table --layout paper --claims` on hand-made records: the paper's Table I/II layout, each cell
"ours (paper)", and the claims recomputed by hand from the same numbers and the paper's CSVs."""

from __future__ import annotations

import csv
import io
import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_tables import make_heldout, make_record

from dpbench.cli import main
from dpbench.errors import DpbenchError
from dpbench.paper_table import format_paper_table
from dpbench.records import write_json_atomic
from dpbench.tables import format_table

# Table I's columns, typed from the paper (Chi et al. 2023), not read from dpbench's copy of its CSV.
TABLE1_COLUMNS = [
    "Lift ph", "Lift mh", "Can ph", "Can mh", "Square ph", "Square mh",
    "Transport ph", "Transport mh", "ToolHang ph", "Push-T",
]  # fmt: skip


def _robomimic(record: dict, env: str, dataset: str) -> dict:
    """A Push-T record moved to a robomimic task with low-dim observations."""
    old = f"pusht-{record['obs']}__"
    record = {**record, "env": env, "obs": "low_dim", "cell_id": record["cell_id"].replace(old, f"{env}-low_dim__")}
    record["dataset"] = {**record["dataset"], "kind": dataset}
    record["action_mode"] = "delta" if dataset.endswith("-delta") else "abs"
    return record


def _records() -> list[dict]:
    dp0 = make_record(
        "diffusion", 0, [0.5, 0.9, 0.8], [True, False], preset="quick", heldout=make_heldout([1.0, 0.6], [1, 0], [1, 0])
    )
    dp1 = make_record(
        "diffusion", 1, [0.6, 0.7, 0.7], [True, False], preset="quick", heldout=make_heldout([0.4, 0.9], [0, 1], [0, 1])
    )
    return [
        dp0,
        dp1,
        make_record("ibc", 0, [0.3, 0.5], [False], preset="quick"),
        make_record("lstm_gmm", 0, [0.6, 0.6], [False], preset="quick"),
        make_record("bc", 0, [0.2, 0.4], [False], preset="quick"),
        _robomimic(make_record("lstm_gmm", 0, [0.9, 1.0], [True], preset="quick"), "lift", "scripted-delta"),
        _robomimic(make_record("lstm_gmm", 1, [0.1, 0.2], [False], preset="quick"), "lift", "scripted"),
        _robomimic(make_record("diffusion", 0, [0.8, 0.9], [True], preset="quick"), "can", "scripted-mh"),
    ]


def _md(text: str, which: int = 0) -> tuple[list[str], dict[str, list[str]]]:
    """Headers and rows (by first cell) of the ``which``-th markdown table in ``text``."""
    blocks = [b for b in text.split("\n\n") if b.startswith("| ")]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in blocks[which].splitlines()]
    return rows[0], {r[0]: r for r in rows[2:]}


def _dpc_pusht_by_hand() -> tuple[float, float, float, float, float]:
    """_records()' DP-C on Push-T, by hand: max std over seeds (maxes 0.9 and 0.7), avg-last-10 ((0.5+0.9+0.8)/3
    and (0.6+0.7+0.7)/3), held-out (seed means 0.8 and 0.65) and its normal interval over the 4 pooled episodes."""
    pooled = np.array([1.0, 0.6, 0.4, 0.9])
    half = 1.96 * pooled.std(ddof=1) / math.sqrt(4)
    lo, hi = max(0.0, pooled.mean() - half), min(1.0, pooled.mean() + half)
    std = math.sqrt(((0.9 - 0.8) ** 2 + (0.7 - 0.8) ** 2) / 1)
    avg = ((0.5 + 0.9 + 0.8) / 3 + (0.6 + 0.7 + 0.7) / 3) / 2
    return std, avg, (0.8 + 0.65) / 2, lo, hi


def test_paper_layout_cells_are_ours_beside_the_papers():
    text = format_paper_table(_records(), "md")
    assert text.startswith("**Table I (state observations)**")
    headers, rows = _md(text)
    assert headers == ["policy", *TABLE1_COLUMNS]
    assert list(rows) == ["LSTM-GMM", "IBC", "BET", "DP-C", "DP-T", "bc (not in the paper)"]
    col = {name: i + 1 for i, name in enumerate(TABLE1_COLUMNS)}

    std, avg, held, lo, hi = _dpc_pusht_by_hand()
    # ⁱ: the paper's Push-T DP-C conditioned by inpainting
    expected = f"0.80±{std:.2f} / {avg:.2f} (last 3); n=2; held-out {held:.2f} [{lo:.2f}, {hi:.2f}] (0.95 / 0.91) ⁱ"
    assert rows["DP-C"][col["Push-T"]] == expected
    # Cells without records carry the paper's number (Table I, DP-C Lift ph: 1.00 / 0.98).
    assert rows["DP-C"][col["Lift ph"]] == "no record (1.00 / 0.98)"
    # scripted-mh fills the mh column; ph stays empty.
    assert rows["DP-C"][col["Can mh"]].startswith("0.90 / 0.85 (last 2); n=1 (1.00 / 0.96)")
    assert rows["DP-C"][col["Can ph"]] == "no record (1.00 / 0.96)"
    # Two Lift ph configurations of LSTM-GMM: the cell shows the one in the paper's action space for it
    # (delta: max 1.0, avg (0.9+1.0)/2), though the absolute-action one is newer, and marks the other.
    assert rows["LSTM-GMM"][col["Lift ph"]] == "1.00 / 0.95 (last 2); n=1 (1.00 / 0.96) ᵃ"
    # bc is not a paper row: its cells have no paper number.
    assert rows["bc (not in the paper)"][col["Push-T"]] == "0.40 / 0.30 (last 2); n=1 (–)"
    # BET has no record anywhere, but the row is kept, as in the paper.
    assert rows["BET"][col["Push-T"]] == "no record (0.79 / 0.70)"


def test_claims_recomputed_by_hand():
    text = format_paper_table(_records(), "md", claims=True)
    _, claims = _md(text, 1)
    # Push-T, ours: DP-C 0.80 against the best baseline LSTM-GMM 0.60: +0.20, +33%. The paper: DP-C and DP-T
    # tie at 0.95 (DP-C is named, the paper's row order), best baseline IBC 0.90: +0.05, +6%.
    row = claims["Push-T"]
    # ours has 2 seeds of DP-C and 1 of LSTM-GMM, fewer than the paper's 3: marked
    assert row[1] == "DP-C 0.80 (n=2) vs LSTM-GMM 0.60 (n=1): +0.20 (+33%)" and "(n=k): ours has fewer" in text
    # ours has DP-C, LSTM-GMM and IBC: among those the paper's best are DP-C and IBC, as over all its rows
    assert row[2] == row[3] == "DP-C 0.95 vs IBC 0.90: +0.05 (+6%)"
    assert row[4] == "DP-C 0.80 (n=2) > LSTM-GMM 0.60 (n=1) > IBC 0.50 (n=1)"
    assert row[5] == "DP-C 0.95 = DP-T 0.95 > IBC 0.90 > BET 0.79 > LSTM-GMM 0.67"
    # Ours puts LSTM-GMM above IBC; the paper the other way round. Nothing else is reversed.
    assert row[6] == "no: LSTM-GMM/IBC (ours from fewer than 3 seeds)"
    # Only Push-T has DP and a baseline in ours, so the mean is Push-T's; the paper's own figure over its 10
    # Table I columns, by hand from its maxes (DP vs best baseline per column):
    paper = [(1, 1), (1, 1), (1, 1), (1, 1), (1, 0.95), (0.97, 0.86), (1, 0.76), (0.68, 0.62), (1, 0.67), (0.95, 0.9)]
    all_cols = np.mean([(d - b) / b for d, b in paper])
    mean_row = claims["mean over 1 column(s)"]
    assert mean_row[1] == f"{0.2 / 0.6:+.1%} (none with 3 seeds of both)" and mean_row[2] == f"{0.05 / 0.9:+.1%}"
    assert mean_row[3] == f"{0.05 / 0.9:+.1%} (all 10 columns: {all_cols:+.1%})"


def test_the_papers_like_for_like_figure_uses_only_the_policies_ours_has():
    # Ours has DP-C and LSTM-GMM on Push-T (3 seeds each, so no n mark). The paper's headline there is DP-C
    # 0.95 vs IBC 0.90; over the same two policies it is DP-C 0.95 vs LSTM-GMM 0.67: +0.28, +42%.
    recs = [
        make_record(p, s, [0.9 - 0.1 * (p == "lstm_gmm")], [True], preset="quick")
        for p in ("diffusion", "lstm_gmm")
        for s in range(3)
    ]
    text = format_paper_table(recs, "md", claims=True)
    _, claims = _md(text, 1)
    row = claims["Push-T"]
    assert row[1] == "DP-C 0.90 vs LSTM-GMM 0.80: +0.10 (+12%)" and "(n=k)" not in text  # nothing marked
    assert row[6] == "yes" and claims["mean over 1 column(s)"][1] == "+12.5%"  # 3 seeds each: no caveat
    assert row[2] == f"DP-C 0.95 vs LSTM-GMM 0.67: +0.28 ({(0.95 - 0.67) / 0.67:+.0%})"
    assert row[3] == "DP-C 0.95 vs IBC 0.90: +0.05 (+6%)"
    mean_row = claims["mean over 1 column(s)"]
    assert mean_row[2] == f"{(0.95 - 0.67) / 0.67:+.1%}"
    # A second column where ours has 1 seed each (Lift ph: DP-C 0.80 vs LSTM-GMM 0.50, +60%; the paper 1.00 vs
    # 1.00, +0%): the mean over both columns, then over the one with 3 seeds of both, on both sides.
    lift = [
        _robomimic(make_record("diffusion", 0, [0.8], [True], preset="quick"), "lift", "scripted"),
        _robomimic(make_record("lstm_gmm", 0, [0.5], [True], preset="quick"), "lift", "scripted-delta"),
    ]
    _, claims = _md(format_paper_table(recs + lift, "md", claims=True), 1)
    pusht_same = (0.95 - 0.67) / 0.67
    assert claims["mean over 2 column(s)"][1:3] == [
        f"{(0.1 / 0.8 + 0.3 / 0.5) / 2:+.1%} (1 with 3 seeds: {0.1 / 0.8:+.1%})",
        f"{(pusht_same + 0.0) / 2:+.1%} (the same 1: {pusht_same:+.1%})",
    ]
    rows = list(csv.DictReader(io.StringIO(format_paper_table(recs, "csv", claims=True))))
    (pusht,) = [r for r in rows if r["task"] == "pusht"]
    assert pusht["paper_same_policies_baseline"] == "lstm_gmm" and pusht["ours_dp_seeds"] == "3"
    assert pusht["ours_relative_improvement"] == f"{round(0.1 / 0.8, 4)}"  # 0.125, not 0.12499999999999997
    # The csv carries the md's means as rows too, the same hand-computed figures (4 decimals).
    rows = list(csv.DictReader(io.StringIO(format_paper_table(recs + lift, "csv", claims=True))))
    means = {r["mean_over"]: r for r in rows if r["task"] == "mean"}
    assert all(r["mean_over"] == "" for r in rows if r["task"] != "mean")
    assert list(means) == ["compared", "compared_3_seeds", "paper_all_columns"]
    assert float(means["compared"]["ours_relative_improvement"]) == round((0.1 / 0.8 + 0.3 / 0.5) / 2, 4)
    assert float(means["compared"]["paper_same_policies_relative_improvement"]) == round(pusht_same / 2, 4)
    assert float(means["compared_3_seeds"]["ours_relative_improvement"]) == round(0.1 / 0.8, 4)
    paper = [(1, 1), (1, 1), (1, 1), (1, 1), (1, 0.95), (0.97, 0.86), (1, 0.76), (0.68, 0.62), (1, 0.67), (0.95, 0.9)]
    assert float(means["paper_all_columns"]["paper_relative_improvement"]) == round(
        float(np.mean([(d - b) / b for d, b in paper])), 4
    )
    assert means["paper_all_columns"]["ours_relative_improvement"] == ""


def test_paper_layout_formats(tmp_path: Path, capsys):
    recs = _records()
    rows = list(csv.DictReader(io.StringIO(format_paper_table(recs, "csv"))))
    pusht = {r["policy"]: r for r in rows if r["task"] == "pusht"}
    assert float(pusht["diffusion_cnn"]["max"]) == pytest.approx(0.8)
    assert float(pusht["diffusion_cnn"]["paper_max"]) == 0.95
    assert pusht["bet"]["seeds"] == "0" and pusht["bet"]["max"] == ""
    claims = list(csv.DictReader(io.StringIO(format_paper_table(recs, "csv", claims=True))))
    claims = [c for c in claims if c["task"] != "mean"]
    assert [(c["task"], c["ours_dp"], c["ours_baseline"]) for c in claims] == [
        ("lift", "", ""),  # no DP on Lift: no comparison
        ("can", "", ""),  # only DP on Can (mh): no baseline
        ("pusht", "diffusion_cnn", "lstm_gmm"),
    ]
    # Push-T by hand: DP-C (0.9 + 0.7) / 2 = 0.8, LSTM-GMM 0.6, IBC 0.5; the paper has IBC 0.90 over LSTM-GMM 0.67,
    # a reversal beyond 0.05: no agreement. Lift has one policy of ours: nothing to agree on.
    assert claims[2]["ranking_ours"] == "diffusion_cnn:0.8000 > lstm_gmm:0.6000 > ibc:0.5000"
    # the paper's Push-T: DP-C = DP-T 0.95 > IBC 0.90 (Table I); a tie reads as one in the csv too
    assert claims[2]["ranking_paper"].startswith("diffusion_cnn:0.95 = diffusion_transformer:0.95 > ibc:0.90")
    assert [c["agrees"] for c in claims] == ["", "", "False"]
    latex = format_paper_table(recs, "latex", claims=True)
    assert r"\begin{tabular}{l" + "c" * 10 + "}" in latex
    assert r"DP-C 0.80 (n=2) vs\\{} LSTM-GMM 0.60 (n=1):\\{} +0.20 (+33\%)" in latex  # stacked, as md's one line
    assert latex.isascii()  # every mark and symbol escaped: pdflatex cannot set them raw (ⁱ is on DP-C Push-T)
    assert "$^{i}$" in latex and "`" not in latex
    assert pusht["diffusion_cnn"]["paper_caveat"].startswith("the paper's DP-C on state Push-T conditioned")
    html = format_paper_table(recs, "html", claims=True)
    assert "<td>no record (1.00 / 0.98)</td>" in html
    # every format titles its tables, as md does; the HTML fragment is ASCII (marks as character references)
    titles = ["Table I (state observations)", "Table I (state observations): the paper's claims, recomputed"]
    assert [f"<caption>{t.replace(chr(39), '&#x27;')}</caption>" in html for t in titles] == [True, True]
    assert html.isascii() and "&#8305;" in html  # ⁱ (U+2071), the DP-C Push-T caveat mark
    assert latex.count(r"\noindent\textbf{Table I (state observations)") == 2
    md = format_paper_table(recs, "md", claims=True)
    assert [f"**{t}**" in md for t in titles] == [True, True]

    out = tmp_path / "results"
    for r in recs:
        write_json_atomic(out / "records" / f"{r['cell_id']}.json", r)
    assert main(["table", "--out", str(out), "--claims", "--no-write-readme"]) == 0
    printed = capsys.readouterr().out
    assert "| DP-C |" in printed and "ranking (paper)" in printed
    # asking for the pivot layout and the claims is one clear error, not the paper layout in silence
    assert main(["table", "--out", str(out), "--claims", "--layout", "pivot", "--no-write-readme"]) == 2
    err = capsys.readouterr().err
    assert "drop --layout pivot" in err and "Traceback" not in err
    assert main(["table", "--out", str(out), "--write-readme"]) == 0
    readme = (out / "README.md").read_text()
    assert "## In the paper's layout, with its claims" in readme and "no record (1.00 / 0.98)" in readme


def _latex_tables(latex: str) -> list[str]:
    """The scaled tabulars of a LaTeX rendering, from \\resizebox to its closing brace."""
    return re.findall(r"\\noindent\\resizebox\{\\linewidth\}\{!\}\{%\n.*?\\end\{tabular\}\}", latex, re.S)


def test_paper_layout_latex_stacks_cells_and_fits_the_page(tmp_path: Path):
    latex = format_paper_table(_records(), "latex", claims=True)
    tables = _latex_tables(latex)
    assert len(tables) == 2  # the layout and the claims, each scaled to the line width
    # The DP-C Push-T cell, by hand, stacked in lines; "{}" after each \\ keeps a line that starts with "[" from
    # being read as \\'s optional [length].
    std, avg, held, lo, hi = _dpc_pusht_by_hand()
    lines = [
        f"0.80$\\pm${std:.2f} / {avg:.2f} (last 3);",
        f"n=2; held-out {held:.2f}",
        f"[{lo:.2f}, {hi:.2f}]",
        "(0.95 / 0.91) $^{i}$",
    ]
    assert r"\begin{tabular}{@{}c@{}}" + r"\\{} ".join(lines) + r"\end{tabular}" in tables[0]
    assert r"\begin{tabular}{@{}l@{}}bc\\{} (not in the paper)\end{tabular}" in tables[0]  # labels: left
    assert not re.search(r"\\\\\s*\[", latex)
    # Every row has the header's 11 columns once the stacked cells (one level of nested tabular) are taken out.
    body = tables[0].split(r"\midrule")[1].split(r"\bottomrule")[0]
    flat = re.sub(r"\\begin\{tabular\}.*?\\end\{tabular\}", "X", body)
    rows = [r for r in flat.split("\n") if r.strip()]
    assert len(rows) == 6 and all(r.count(" & ") == 10 for r in rows)
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed: the tables were not typeset")
    preamble = [r"\documentclass{article}", r"\usepackage{booktabs,graphicx}", r"\begin{document}"]
    doc = "\n\n".join([*preamble, latex, r"\end{document}"])  # the whole output, the notes' long hashes too
    (tmp_path / "t.tex").write_text(doc)
    run = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "t.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-2000:]
    assert "Overfull \\hbox" not in run.stdout  # both tables and their notes within the page's text width


def test_older_protocol_cells_are_marked_and_nothing_to_show_is_an_error():
    old = make_record("diffusion", 0, [0.5, 0.9], [True], preset="quick")
    old["protocol"] = 1
    ibc = make_record("ibc", 0, [0.3, 0.4], [True], preset="quick")
    text = format_paper_table([old, ibc], "md", claims=True)
    _, rows = _md(text)
    assert rows["DP-C"][-1].endswith("ᵛ ⁱ")
    # the claims leave the older-protocol DP cell out: Push-T has a baseline and no comparable DP
    _, claims = _md(text, 1)
    assert claims["Push-T"][1] == "–" and claims["Push-T"][4] == "IBC 0.40 (n=1)"
    with pytest.raises(DpbenchError, match="no record fits the paper's tables"):
        format_paper_table([make_record("diffusion", 0, [0.5], [True], obs="state")], "md")


def test_a_cell_off_its_presets_schedule_is_marked_and_left_out_of_the_claims():
    # a run with --set train.eval_every=1500 evaluates less often than its preset: its avg-last-10 means less
    dp = make_record("diffusion", 0, [0.5, 0.9], [True], preset="quick")
    dp["config"]["overrides"] = {"train.eval_every": 1500}
    ibc = make_record("ibc", 0, [0.3, 0.4], [True], preset="quick")
    text = format_paper_table([dp, ibc], "md", claims=True)
    _, rows = _md(text)
    assert rows["DP-C"][-1].endswith("ˢ ⁱ") and not rows["IBC"][-1].endswith("ˢ")
    assert "ˢ not its preset as defined today" in text
    _, claims = _md(text, 1)
    assert claims["Push-T"][1] == "–" and claims["Push-T"][4] == "IBC 0.40 (n=1)"
    (row,) = [r for r in csv.DictReader(io.StringIO(format_paper_table([dp], "csv"))) if r["seeds"] != "0"]
    assert row["preset_schedule"] == "False" and row["max_std"] == ""  # one seed: no spread, not 0
    # an on-preset config of the same cell is shown (and compared) before an off-preset one with more seeds
    on = make_record("diffusion", 5, [0.7, 0.8], [True], preset="quick")
    on["config"]["overrides"] = {"train.checkpoint_every": 100}  # changes neither max nor avg-last-10
    on["config_hash"], on["cell_id"] = "oncfg", on["cell_id"].replace(on["config_hash"], "oncfg")
    dp1 = make_record("diffusion", 1, [0.5, 0.9], [True], preset="quick")
    dp1["config"]["overrides"] = {"train.eval_every": 1500}
    text = format_paper_table([dp, dp1, on, ibc], "md", claims=True)
    _, rows = _md(text)
    assert (
        rows["DP-C"][-1].startswith("0.80 / 0.75 (last 2); n=1")
        and "ˢ" not in rows["DP-C"][-1]
        and "ᵃ" in rows["DP-C"][-1]
    )
    _, claims = _md(text, 1)
    assert claims["Push-T"][1] == "DP-C 0.80 (n=1) vs IBC 0.40 (n=1): +0.40 (+100%)"


def test_a_smoke_run_never_stands_for_a_cell_nor_counts_in_the_claims():
    # a 4-seed smoke run (6 steps) beside a 2-seed quick one: the cell showed the smoke run, as it had more seeds
    quick = [make_record("diffusion", s, [0.7, 0.8], [True], preset="quick") for s in (0, 1)]
    smoke = [make_record("diffusion", s, [0.1, 0.1], [False], preset="smoke") for s in range(4)]
    for r in smoke:
        r["config_hash"], r["cell_id"] = "smokecfg", r["cell_id"].replace(r["config_hash"], "smokecfg")
    ibc = make_record("ibc", 0, [0.3, 0.4], [True], preset="quick")
    text = format_paper_table([*quick, *smoke, ibc], "md", claims=True)
    _, rows = _md(text)
    assert rows["DP-C"][-1].startswith("0.80±0.00 / 0.75 (last 2); n=2") and "ᵃ" in rows["DP-C"][-1]
    # a paper-preset run is nearer the paper than a quick one with more seeds
    paper = make_record("diffusion", 0, [0.9, 0.95], [True], preset="paper")
    paper["config_hash"], paper["cell_id"] = "papercfg", paper["cell_id"].replace(paper["config_hash"], "papercfg")
    _, rows = _md(format_paper_table([*quick, paper], "md"))
    assert rows["DP-C"][-1].startswith("0.95 / 0.93 (last 2); n=1")
    # a cell with only a smoke run is shown, named as such, and the claims leave it out
    text = format_paper_table([*smoke, ibc], "md", claims=True)
    assert "1 at smoke" in text and "(smoke: a few steps that check the pipeline" in text
    assert "(quick: CPU-sized" in text  # IBC's cell is quick
    _, claims = _md(text, 1)
    assert claims["Push-T"][1] == "–" and claims["Push-T"][4] == "IBC 0.40 (n=1)"


def test_the_papers_push_t_dp_c_carries_its_conditioning_caveat():
    # the reference CSV says the paper's state Push-T DP-C used inpainting; ours conditions by FiLM: the cell says so
    dp = make_record("diffusion", 0, [0.5, 0.9], [True], preset="quick")
    ibc = make_record("ibc", 0, [0.3, 0.4], [True], preset="quick")
    text = format_paper_table([dp, ibc], "md")
    _, rows = _md(text)
    assert rows["DP-C"][-1].endswith("ⁱ") and not rows["IBC"][-1].endswith("ⁱ")
    assert "DP-C Push-T: the paper's DP-C on state Push-T conditioned on the observations by inpainting" in text
    assert "inpainting" in (Path(__file__).parents[1] / "dpbench/reference/chi2023_table1_state.csv").read_text()


def test_dataset_names_map_to_the_papers_demo_variants():
    from dpbench.data.registry import data_variant

    assert [data_variant(k) for k in ("human", "scripted", "scripted-delta", "scripted-mh", "scripted-mh-delta")] == [
        "ph",
        "ph",
        "ph",
        "mh",
        "mh",
    ]


def test_a_robomimic_mh_file_by_path_fills_the_mh_column():
    # records name the dataset's variant (dataset.variant): an official mh low_dim.hdf5 given by path is mh
    path_mh = _robomimic(make_record("diffusion", 0, [0.8], [True], preset="quick"), "square", "path")
    path_mh["dataset"] = {**path_mh["dataset"], "variant": "mh"}
    _, rows = _md(format_paper_table([path_mh], "md"))
    col = {name: i + 1 for i, name in enumerate(TABLE1_COLUMNS)}
    assert rows["DP-C"][col["Square mh"]].startswith("0.80 / ")
    assert rows["DP-C"][col["Square ph"]].startswith("no record")


def test_the_paper_tie_that_ours_separates_is_a_disagreement_and_filters_are_named():
    dpc = make_record("diffusion", 0, [0.9], [True], preset="quick")
    dpt = make_record("diffusion_transformer", 0, [0.7], [True], preset="quick")
    ibc = make_record("ibc", 0, [0.5], [True], preset="quick")
    text = format_paper_table([dpc, dpt, ibc], "md", claims=True, envs=["pusht"], selection="--env pusht")
    headers, _ = _md(text)
    assert headers == ["policy", "Push-T"]  # only the selected task's columns
    _, claims = _md(text, 1)
    # The paper: DP-C = DP-T = 0.95; ours 0.9 vs 0.7, a gap over 0.05.
    assert claims["Push-T"][6] == "no: DP-C/DP-T (paper: tie) (ours from fewer than 3 seeds)"  # 1 seed each: said
    assert "Computed over the selected records only (--env pusht)" in text
    assert _md(text, 1)[0][1] == "ours: DP vs best baseline"
    # a --policy selection may leave the best baseline out: the header says the baseline is the selection's best
    text = format_paper_table([dpc, ibc], "md", claims=True, envs=["pusht"], selection="--policy diffusion,ibc")
    assert _md(text, 1)[0][1] == "ours: DP vs best selected baseline"
    # ... and every claims csv row carries the selection (the mean rows too)
    rows = list(csv.DictReader(io.StringIO(format_paper_table([dpc, ibc], "csv", True, ["pusht"], "--policy x"))))
    assert rows and all(r["selection"] == "--policy x" for r in rows)


def test_heldout_interval_of_a_success_score_is_wilson():
    from dpbench.metrics import wilson_ci

    scores = [1.0] * 199 + [0.0]
    rec = _robomimic(
        make_record("lstm_gmm", 0, [1.0], [True], preset="quick", heldout=make_heldout(scores, scores, scores)),
        "lift",
        "scripted-delta",
    )
    _, rows = _md(format_paper_table([rec], "md"))
    lo, hi = wilson_ci(199, 200)
    assert f"held-out 0.99 [{lo:.2f}, {hi:.2f}]" in rows["LSTM-GMM"][1] and lo < 0.98


@pytest.mark.parametrize(("ibc_max", "agrees"), [(0.92, "yes (within 0.05: IBC/DP-C)"), (0.97, "no: IBC/DP-C")])
def test_a_reversal_counts_only_beyond_the_same_margin_as_a_separated_tie(ibc_max: float, agrees: str):
    # The paper's state Push-T: DP-C 0.95 > IBC 0.90 (typed from Table I). Ours reverses the pair by 0.02 (inside
    # the 0.05 seed margin a paper tie is also allowed) or by 0.07 (beyond it).
    dpc = make_record("diffusion", 0, [0.9], [True], preset="quick")
    ibc = make_record("ibc", 0, [ibc_max], [True], preset="quick")
    _, claims = _md(format_paper_table([dpc, ibc], "md", claims=True, envs=["pusht"]), 1)
    assert claims["Push-T"][6] == agrees + " (ours from fewer than 3 seeds)"
    # both rankings name ours' seed counts where fewer than the paper's 3
    assert claims["Push-T"][4] == f"IBC {ibc_max:.2f} (n=1) > DP-C 0.90 (n=1)"


@pytest.mark.parametrize(
    ("policy", "preset", "off", "why"),
    [
        ("diffusion", "quick", True, "not on their preset as defined today (ˢ)"),
        ("diffusion", "smoke", False, "smoke runs, a pipeline check"),
        ("bc", "quick", False, "of policies the paper does not have"),
    ],
)
def test_claims_with_no_comparable_cell_say_why(policy: str, preset: str, off: bool, why: str):
    """The note names the reason the records at hand are left out; before 2026-12-06 it blamed the protocol,
    the schedule and the action space whatever the reason (a newcomer's smoke run, a --policy bc selection)."""
    rec = make_record(policy, 0, [0.5, 0.9], [True], preset=preset)
    if off:
        rec["config"]["overrides"] = {"train.eval_every": 1500}  # off its preset: the claims leave it out
    text = format_paper_table([rec], "md", claims=True, envs=["pusht"])
    assert f"No column qualifies: the records here are {why}" in text
    assert "Push-T" not in text.split("the paper's claims, recomputed")[1].split("\n\n")[1]


def test_a_reversed_paper_tie_is_a_tie_and_the_noise_pairs_reach_the_csv():
    # The paper's Push-T (typed from Table I): DP-C = DP-T = 0.95 > IBC 0.90. Ours: DP-T 0.9, IBC 0.72, DP-C 0.7.
    # DP-C/DP-T: a paper tie ours separates by 0.2, whichever way round; IBC/DP-C: reversed by 0.02, within 0.05.
    recs = [
        make_record("diffusion_transformer", 0, [0.9], [True], preset="quick"),
        make_record("ibc", 0, [0.72], [True], preset="quick"),
        make_record("diffusion", 0, [0.7], [True], preset="quick"),
    ]
    _, claims = _md(format_paper_table(recs, "md", claims=True, envs=["pusht"]), 1)
    assert claims["Push-T"][6] == "no: DP-C/DP-T (paper: tie); (within 0.05: IBC/DP-C) (ours from fewer than 3 seeds)"
    (row,) = [
        r
        for r in csv.DictReader(io.StringIO(format_paper_table(recs, "csv", claims=True, envs=["pusht"])))
        if r["task"] == "pusht"
    ]
    assert row["disagreeing_pairs"].endswith("(paper-tie)") and len(row["disagreeing_pairs"].split()) == 1
    assert len(row["pairs_within_noise"].split()) == 1 and "/" in row["pairs_within_noise"]


def test_a_paper_tie_ours_separates_within_the_margin_is_listed_and_the_evaluation_count_is_the_records():
    # The paper's Push-T (typed from Table I): DP-C = DP-T = 0.95. Ours: DP-C 0.93 > DP-T 0.90, apart by 0.03 (inside
    # the 0.05 margin, so not counted) but shown as an order in ours' ranking: the column must say so, not just 'yes'.
    recs = [
        make_record("diffusion", 0, [0.5, 0.93, 0.9], [True] * 3, preset="quick"),
        make_record("diffusion_transformer", 0, [0.9, 0.8], [True] * 2, preset="quick"),
    ]
    text = format_paper_table(recs, "md", claims=True, envs=["pusht"])
    _, claims = _md(text, 1)
    assert claims["Push-T"][6] == "yes (within 0.05: DP-C/DP-T (paper: tie)) (ours from fewer than 3 seeds)"
    assert claims["Push-T"][4] == "DP-C 0.93 (n=1) > DP-T 0.90 (n=1)"
    # the runs made 3 and 2 evaluations: the legend gives those, not the presets' nominal counts
    assert "max is taken over 2-3 evaluations per run" in text
    (row,) = [
        r
        for r in csv.DictReader(io.StringIO(format_paper_table(recs, "csv", claims=True, envs=["pusht"])))
        if r["task"] == "pusht"
    ]
    assert row["pairs_within_noise"] == "diffusion_cnn/diffusion_transformer(paper-tie)" and row["agrees"] == "True"


def test_the_seed_count_legend_follows_a_mark_in_the_rankings_alone():
    # DP-C and IBC have 3 seeds each (no mark in the DP-vs-baseline column); LSTM-GMM has 1: only its ranking
    # entry carries (n=1), and the legend must still explain it.
    recs = [
        make_record(p, s, [m], [True], preset="quick") for p, m in (("diffusion", 0.9), ("ibc", 0.8)) for s in range(3)
    ]
    recs.append(make_record("lstm_gmm", 0, [0.5], [True], preset="quick"))
    text = format_paper_table(recs, "md", claims=True, envs=["pusht"])
    _, claims = _md(text, 1)
    assert "(n=" not in claims["Push-T"][1] and "LSTM-GMM 0.50 (n=1)" in claims["Push-T"][4]
    assert "(n=k): ours has fewer than the paper's 3 seeds of that policy;" in text


def test_a_selected_column_with_no_record_shows_the_papers_numbers(tmp_path: Path, capsys):
    out = tmp_path / "results"
    for r in _records():  # Push-T, Lift and Can only
        write_json_atomic(out / "records" / f"{r['cell_id']}.json", r)
    argv = ["table", "--out", str(out), "--layout", "paper", "--claims", "--env", "transport", "--no-write-readme"]
    assert main([*argv, "--obs", "low_dim"]) == 0
    printed = capsys.readouterr().out
    headers, rows = _md(printed)
    # the paper's Table I, Transport (Chi et al. 2023): LSTM-GMM 0.76/0.47 (ph), 0.62/0.20 (mh); DP-T 1.00/0.84 (ph)
    assert headers == ["policy", "Transport ph", "Transport mh"]
    assert rows["LSTM-GMM"][1:] == ["no record (0.76 / 0.47)", "no record (0.62 / 0.20)"]
    assert rows["DP-T"][1] == "no record (1.00 / 0.84)"
    assert "No column qualifies: these columns have no record yet." in printed and "Table II" not in printed
    assert main(argv) == 0  # no --obs: both tables have Transport columns
    assert "**Table II (image observations)**" in capsys.readouterr().out
    # the pivot table has no paper side to show: a selection with no record stays an error
    assert main(["table", "--out", str(out), "--env", "transport", "--no-write-readme"]) == 2
    assert "no result records" in capsys.readouterr().err
    # so does a policy or obs selection nobody has run: Table II, IBC on image Push-T (paper 0.75 / 0.64)
    assert main(["table", "--out", str(out), "--layout", "paper", "--obs", "image", "--policy", "ibc"]) == 0
    printed = capsys.readouterr().out
    assert _md(printed)[1]["IBC"][-1] == "no record (0.75 / 0.64)" and "Table I " not in printed
    # Push-T's `state` mode is in neither of the paper's tables (Table I's state columns are keypoints and
    # low_dim): one line that says which modes, not advice to train
    assert main(["table", "--out", str(out), "--layout", "paper", "--obs", "state", "--no-write-readme"]) == 2
    err = capsys.readouterr().err
    assert "in neither of the paper's tables" in err and "--obs keypoints,low_dim" in err and err.count("\n") == 1
    # a typo is an unknown name, listed with the valid ones, not a mode outside the paper's tables
    assert main(["table", "--out", str(out), "--layout", "paper", "--obs", "imgae", "--no-write-readme"]) == 2
    err = capsys.readouterr().err
    assert "unknown obs 'imgae'; valid obs modes:" in err and "neither" not in err
    # a task that has none of the selected modes has no column to show: Lift has records (low_dim), and a table
    # of "no record" under --obs keypoints would read as if none were run. Push-T has no low_dim either.
    # Each printed table is checked on its own: --obs keypoints,image prints Table I with keypoints alone.
    cases = (("lift", "keypoints", "lift: low_dim"), ("pusht", "low_dim", "pusht: keypoints"))
    cases += (("lift", "keypoints,image", "lift: low_dim"),)
    for env, mode, theirs in cases:
        argv = ["table", "--out", str(out), "--layout", "paper", "--env", env, "--obs", mode, "--no-write-readme"]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert f"{env} has no obs mode {mode.split(',')[0]}, so Table I (state observations) would read" in err
        assert f"which are under {theirs};" in err and err.count("\n") == 1
    for fine in ("keypoints,image", "low_dim,image", "image"):  # every table printed has a column of each task
        argv = ["table", "--out", str(out), "--layout", "paper", "--no-write-readme", "--obs", fine]
        assert main([*argv, "--env", "pusht" if fine.startswith("keypoints") else "lift"]) == 0
        capsys.readouterr()
    # --out is the results dir read: a file path meant for the output says so, and where the table goes
    assert main(["table", "--out", str(tmp_path / "table.csv"), "--format", "csv"]) == 2
    err = capsys.readouterr().err
    assert "--out names a results dir to read" in err and "the table prints to stdout" in err
    assert main(["plot", "--out", str(tmp_path / "figs")]) == 2  # plot reads the same dir; it prints no table
    err = capsys.readouterr().err
    assert "--out names a results dir to read" in err and "table" not in err
    # the records folder itself names the dir above it; an empty selection is refused, not dropped
    assert main(["table", "--out", str(out / "records"), "--no-write-readme"]) == 2
    assert f"(--out {out})" in capsys.readouterr().err
    assert main(["table", "--out", str(out), "--env", "", "--no-write-readme"]) == 2
    assert "--env needs at least one name" in capsys.readouterr().err


def test_variant_selects_the_papers_demo_columns_and_their_records(tmp_path: Path, capsys):
    # _records(): Lift ph (scripted, scripted-delta), Can mh (scripted-mh) and Push-T (human, which counts as ph)
    out = tmp_path / "results"
    for r in _records():
        write_json_atomic(out / "records" / f"{r['cell_id']}.json", r)
    argv = ["table", "--out", str(out), "--no-write-readme"]
    paper = [*argv, "--layout", "paper", "--obs", "keypoints,low_dim"]
    assert main([*paper, "--variant", "mh"]) == 0
    headers, rows = _md(capsys.readouterr().out)
    assert headers == ["policy", "Lift mh", "Can mh", "Square mh", "Transport mh"]  # the paper's mh columns
    assert rows["DP-C"][2] == "0.90 / 0.85 (last 2); n=1 (1.00 / 0.96)"  # max 0.9, mean of 0.8 and 0.9; paper DP-C
    assert rows["LSTM-GMM"][1] == "no record (1.00 / 0.93)"  # Lift mh: the Lift ph records stay out
    assert main([*paper, "--variant", "ph", "--env", "lift,pusht"]) == 0
    assert _md(capsys.readouterr().out)[0] == ["policy", "Lift ph", "Push-T"]
    # the pivot: only the records of the variant (its csv has one row per configuration)
    assert main([*argv, "--variant", "mh", "--format", "csv"]) == 0
    kinds = [row["dataset"] for row in csv.DictReader(io.StringIO(capsys.readouterr().out))]
    assert kinds == ["scripted-mh"]
    assert main([*argv, "--variant", "ph", "--format", "csv"]) == 0
    kinds = sorted(row["dataset"] for row in csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert kinds == ["human", "human", "human", "human", "scripted", "scripted-delta"]
    assert main([*argv, "--variant", "xh"]) == 2
    assert "unknown variant 'xh'; valid variants: mh, ph" in capsys.readouterr().err
    # Push-T and ToolHang have no mh demos (the paper's Table I has Push-T and ToolHang ph only): one line, in
    # either layout, not an empty table
    for layout in ("pivot", "paper"):
        assert main([*argv, "--layout", layout, "--variant", "mh", "--env", "lift,pusht,tool_hang"]) == 2
        err = capsys.readouterr().err
        assert "pusht, tool_hang have ph demonstrations only" in err and err.count("\n") == 1
    # the claims name the selection as parsed, not as typed
    assert main([*paper, "--claims", "--variant", " mh ", "--env", "can"]) == 0
    printed = capsys.readouterr().out
    assert "(--env can --obs keypoints,low_dim --variant mh)" in printed and "--variant  mh" not in printed
    # no record of the variant: the pivot's error lists the variants the records hold
    assert main([*argv, "--variant", "mh", "--env", "lift"]) == 2
    assert "and variants mh, ph" in capsys.readouterr().err
    # plot: only the variant's records, in a folder named by the selection as parsed
    assert main(["plot", "--out", str(out), "--variant", " mh ", "--policy", "diffusion"]) == 0
    written = [Path(p) for p in capsys.readouterr().out.split()]
    assert written and {p.parent.name for p in written} == {"selection_policy-diffusion_variant-mh"}


def test_an_avg_last_10_over_fewer_evaluations_says_how_many():
    # seeds with 4 and 5 evaluations average all of theirs: the cell says so, as the pivot does; 12 evaluations
    # average the last 10 and carry no mark
    few = [make_record("diffusion", s, [0.5] * n, [True], preset="quick") for s, n in ((0, 4), (1, 5))]
    ibc = make_record("ibc", 0, [0.4] * 12, [True], preset="quick")
    text = format_paper_table([*few, ibc], "md")
    _, rows = _md(text)
    assert rows["DP-C"][-1].startswith("0.50±0.00 / 0.50 (last 4-5); n=2")
    assert rows["IBC"][-1].startswith("0.40 / 0.40; n=1")
    assert "(last n): the run evaluated fewer than 10 times" in text
    assert "(last n)" not in format_paper_table([ibc], "md")
    pivot = format_table([*few, ibc], "md")
    assert "0.500 ± 0.000 / 0.500 ± 0.000 (last 4-5) /" in pivot and "(last 10)" not in pivot


def test_a_policy_left_out_by_the_selection_is_not_selected_not_missing(tmp_path: Path, capsys):
    # IBC has a Push-T record; `--policy lstm_gmm` leaves it out, and its row must not read as if nobody ran it
    out = tmp_path / "results"
    for r in _records():
        write_json_atomic(out / "records" / f"{r['cell_id']}.json", r)
    argv = ["table", "--out", str(out), "--layout", "paper", "--obs", "keypoints,low_dim", "--no-write-readme"]
    assert main([*argv, "--policy", "lstm_gmm"]) == 0
    text = capsys.readouterr().out
    _, rows = _md(text)
    assert rows["IBC"][-1] == "not selected (0.90 / 0.84)" and rows["DP-C"][-1].startswith("not selected")
    assert rows["LSTM-GMM"][3] == "no record (1.00 / 0.91)"  # Can ph: selected, and nobody ran it
    assert "not selected: a policy the --policy selection left out" in text
    assert main([*argv, "--policy", "diffusion"]) == 0  # dpbench's name selects the paper's DP-C row
    _, rows = _md(capsys.readouterr().out)
    assert rows["DP-C"][3] == "no record (1.00 / 0.96)" and rows["IBC"][3].startswith("not selected")


def test_a_cell_pooled_over_collections_of_one_recipe_is_marked_and_explained():
    # Seeds trained on collections of one scripted recipe with other content hashes are one cell (data_identity);
    # the paper layout must mark it and say why, not only print "f3822205+d0f7a3f0" among the sources.
    from test_tables import _scripted

    pooled = [_scripted(0, "f38222057e878bde"), _scripted(1, "d0f7a3f01c4adaf3")]
    text = format_paper_table(pooled, "md", envs=["square"])
    _, rows = _md(text)
    assert rows["DP-C"][1].endswith("(1.00 / 0.93) ʳ")  # Square ph, paper DP-C 1.00 / 0.93 (Table I)
    assert "ʳ the seeds trained on separate collections of one scripted recipe" in text
    assert "dataset f3822205+d0f7a3f0" in text
    single = format_paper_table(pooled[:1], "md", envs=["square"])
    assert "ʳ" not in single


def test_a_selected_policy_outside_the_paper_with_no_record_there_is_named(tmp_path: Path, capsys):
    # bc (not in the paper) has a Push-T record only. Selected on Lift it has no row (the paper has none for it);
    # the notes must say so, not drop it silently. A selection with none of our cells says that, not "none".
    out = tmp_path / "results"
    for r in _records():
        write_json_atomic(out / "records" / f"{r['cell_id']}.json", r)
    argv = ["table", "--out", str(out), "--layout", "paper", "--no-write-readme", "--obs", "keypoints,low_dim"]
    assert main([*argv, "--policy", "bc", "--env", "lift"]) == 0
    text = capsys.readouterr().out
    assert "Selected, not in the paper, and no record in these columns (so no row): bc." in text
    assert "No cell of ours is in this selection." in text and "Presets of the cells shown" not in text
    assert main([*argv, "--policy", "bc,diffusion", "--env", "lift,pusht"]) == 0
    text = capsys.readouterr().out
    assert "bc (not in the paper)" in _md(text)[1] and "Selected, not in the paper" not in text


def test_a_module_class_reference_selects_the_row_of_its_class_name(tmp_path: Path, capsys):
    # `--policy package.module:Class` selects the records of the class's `name` (lstm_gmm); the paper layout must
    # treat that row as selected ("no record" where nobody ran it, not "not selected"), and name a selected
    # reference outside the paper (bc) that has no row, as it does for `--policy bc`.
    out = tmp_path / "results"
    for r in _records():
        write_json_atomic(out / "records" / f"{r['cell_id']}.json", r)
    argv = ["table", "--out", str(out), "--layout", "paper", "--no-write-readme", "--obs", "keypoints,low_dim"]
    ref = "dpbench.baselines.lstm_gmm:LSTMGMMPolicy"
    assert main([*argv, "--policy", ref]) == 0
    _, rows = _md(capsys.readouterr().out)
    assert rows["LSTM-GMM"][3] == "no record (1.00 / 0.91)"  # Can ph (Table I: LSTM-GMM 1.00 / 0.91)
    assert rows["IBC"][3].startswith("not selected")
    assert main([*argv, "--policy", "dpbench.baselines.bc:BCPolicy", "--env", "lift"]) == 0
    text = capsys.readouterr().out
    assert "Selected, not in the paper, and no record in these columns (so no row): bc." in text
