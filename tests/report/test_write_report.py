from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest

from selectseg.report import figures_dir, write_report

from ._fixtures import BASE_COVERAGE, BASE_DICE, BETTER_COVERAGE, BETTER_DICE, make_run, table_rows

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_tables_hold_the_hand_computed_numbers(full_report: Path) -> None:
    html = full_report.read_text()
    table1 = table_rows(html, "table1")
    assert table1[0][:2] == ["run", "AURC (%)"]
    assert table1[0][2:] == [f"Dice (%) at coverage {c}" for c in ("1.00", "0.95", "0.90", "0.80", "0.70")]
    base = table1[2]
    # Coverage 1: mean 0.75, std sqrt(0.0125) = 0.1118, 5th percentile 0.6 + 0.15 * 0.1 = 0.615.
    assert base[:4] == ["base", "12.340", "75.00 ± 11.18", "61.50"]
    assert table1[3][:3] == ["better", "12.340", "77.50 ± 9.39"]  # std of (.85, .72, .88, .65): sqrt(.008825)
    table4 = table_rows(html, "table4")
    assert table4[0] == [
        "run",
        "vs",
        "cases",
        *[f"coverage {c}" for c in ("1.00", "0.99", "0.98", "0.97", "0.96", "0.95")],
    ]
    assert table4[1][:4] == ["better", "base", "4", "+2.50"]
    assert table4[1][-1] == "+3.00"
    quadrants = table_rows(html, "quadrants")
    assert quadrants[1] == ["better vs base", "0.95", "4", "25.0", "25.0", "0.0", "25.0", "25.0"]
    qc = table_rows(html, "quality-control")
    assert ["base", "mean entropy", "0.80", "0.3200", "0.2500", "0.0700"] in qc
    ood = table_rows(html, "ood")
    assert ood[0] == ["run", "image score", "AUROC, 0.5 distorted", "AUROC, 1 distorted"]
    assert ["base", "mean entropy", "0.790", "n/a"] in ood
    assert table_rows(html, "calibration")[1] == ["base", "0.1234", "0.0456", "0.0123", "0.0101", "15"]
    assert table_rows(html, "disagreement")[1] == ["base", "max_softmax", "0.610", "0.550", "n/a", "0.420", "0.710"]
    versions = dict(table_rows(html, "versions")[1:])
    assert set(versions) == {"python", "selectseg", "torch", "monai", "numpy", "matplotlib"}


def test_report_embeds_every_figure_and_saves_png_and_svg(full_report: Path) -> None:
    html = full_report.read_text()
    folder = figures_dir(full_report)
    assert folder == full_report.parent / "report_figures"
    names = sorted(p.stem for p in folder.glob("*.png"))
    assert names == sorted(p.stem for p in folder.glob("*.svg"))
    assert set(names) == {
        "curves",
        "scatter_better_vs_base",
        "montage_base",
        "montage_better",
        "reliability",
        "quality_control",
        "ood_base",
        "ood_better",
        "image_scores_base",
        "image_scores_better",
    }
    sources = re.findall(r'<img src="([^"]+)"', html)
    assert len(sources) == len(names)
    for name in names:
        assert f'id="fig-{name}"' in html
        assert (folder / f"{name}.png").read_bytes().startswith(PNG_MAGIC)
        assert (folder / f"{name}.svg").read_text().lstrip().startswith("<?xml")
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)


def test_report_is_self_contained_and_escaped(full_report: Path) -> None:
    html = full_report.read_text()
    assert "http://" not in html and "https://" not in html
    assert 'loading="lazy"' not in html and "<script" not in html.lower()
    assert not list(full_report.parent.glob(".*.tmp"))  # atomic writes leave no temp files
    # The config's comment "<b>not bold</b>" is shown as text.
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html and "<b>not bold" not in html
    assert "<summary>config.yaml (" in html and "member_0" in html  # the ensemble shows member 0's config
    assert "<summary>ensemble.json</summary>" in html


def test_single_run_report_has_no_comparison(tmp_path: Path) -> None:
    out = write_report([make_run(tmp_path / "one", everything=False)], tmp_path / "one.html", figure_formats=())
    html = out.read_text()
    assert 'id="table1"' in html and 'id="table4"' not in html and 'id="quadrants"' not in html
    assert "Per-image differences" not in html
    assert not figures_dir(out).exists()


def test_report_with_old_quality_control_and_no_optional_parts(tmp_path: Path) -> None:
    bare = make_run(tmp_path / "bare", everything=False)
    old = make_run(tmp_path / "old", BETTER_DICE, BETTER_COVERAGE, qc="old", everything=False)
    out = write_report([bare, old], tmp_path / "r.html", labels=["bare <1>", "old & new"], figure_formats=("png",))
    html = out.read_text()
    assert table_rows(html, "quality-control")[1] == [
        "old & new",
        "mean max_softmax",
        "0.80",
        "0.3125",
        "0.2500",
        "0.0625",
    ]
    assert "bare &lt;1&gt;" in html
    for absent in ('id="calibration"', 'id="disagreement"', 'id="ood"', "fig-quality_control", "fig-montage"):
        assert absent not in html
    assert "No config.yaml in the run folder." in html
    assert sorted(p.name for p in figures_dir(out).iterdir()) == ["curves.png", "scatter_old_new_vs_bare_1.png"]


def test_table1_shows_bootstrap_intervals_beside_an_old_run_without(tmp_path: Path) -> None:
    new = make_run(tmp_path / "new", everything=False, bootstrap=True)
    old = make_run(tmp_path / "old", everything=False)  # evaluation.json from before the bootstrap: still loads
    html = write_report([new, old], tmp_path / "r.html", figure_formats=()).read_text()
    table1 = table_rows(html, "table1")
    assert table1[0][:2] == ["run", "AURC (%) [CI]"]
    assert table1[1][:3] == ["mean [CI]", "std", "5th pct."]
    assert table1[2][:5] == ["new", "12.340 [11.340, 13.840]", "75.00 [73.00, 76.00]", "11.18", "61.50"]
    assert table1[3][:5] == ["old", "12.340", "75.00", "11.18", "61.50"]
    assert "95 % percentile bootstrap interval over images (1000 resamples, seed 0)" in html


def test_write_report_bad_arguments(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Did you mean 'svg'"):
        write_report([two_runs[0]], tmp_path / "r.html", figure_formats=("svgz",))
    with pytest.raises(TypeError, match="figure_formats"):
        write_report([two_runs[0]], tmp_path / "r.html", figure_formats=(1,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="is a folder"):
        write_report([two_runs[0]], tmp_path)
    empty = tmp_path / "not_evaluated"
    empty.mkdir()
    (empty / "run.json").write_text(json.dumps({}))
    with pytest.raises(ValueError, match=r"not_evaluated.*evaluation\.json' is missing"):
        write_report([two_runs[0], empty], tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_figure_bytes_rejects_unknown_format() -> None:
    from matplotlib.figure import Figure

    from selectseg.report.figures import figure_bytes

    fig = Figure()
    assert figure_bytes(fig, "png").startswith(PNG_MAGIC)
    assert b"<dc:date>" not in figure_bytes(fig, "svg")  # no timestamp: the same figure gives the same file
    with pytest.raises(ValueError, match="Expected `fmt` to be one of"):
        figure_bytes(fig, "pdf")


def test_table1_shows_the_aurc_split_error_auroc_and_augrc_when_a_run_has_them(tmp_path: Path) -> None:
    old = make_run(tmp_path / "old", everything=False)
    split = {"oracle_aurc": 0.1, "excess_aurc": -0.0012, "error_auroc": 0.875, "augrc": 0.0456}
    new = make_run(tmp_path / "new", BETTER_DICE, BETTER_COVERAGE, everything=False, decomposition=split)
    html = write_report([old, new], tmp_path / "r.html", figure_formats=()).read_text()
    table1 = table_rows(html, "table1")
    assert table1[0][-3:] == ["AURC = oracle + excess (%)", "AUGRC (%)", "error AUROC"]
    assert table1[1][-2:] == ["oracle", "excess"]
    assert table1[2][0] == "old" and table1[2][-4:] == ["n/a"] * 4  # an older file: n/a, not a crash
    assert table1[3][:2] == ["new", "12.340"] and table1[3][-4:] == ["10.000", "-0.120", "4.560", "0.875"]
    assert "Oracle: the AURC of the same segmentation" in html
    # Runs without these numbers keep Ding et al.'s columns only.
    only_old = write_report([old], tmp_path / "o.html", figure_formats=()).read_text()
    assert table_rows(only_old, "table1")[0][-1] == "Dice (%) at coverage 0.70"
    assert "Oracle: the AURC" not in only_old


def test_training_history_section(tmp_path: Path) -> None:
    """metrics.csv is read as columns (empty cells and 'nan' as NaN, an older file without the gradient columns
    too), drawn in the Training figure and summarised per run: the last weight and lr, the mean gradient ratio over
    the first and the last tenth of the measured epochs."""
    from selectseg.report.results import load_run_results

    new = make_run(tmp_path / "new")
    lines = ["epoch,segmentation,ranking,ranking_weight,lr,grad_ratio,val_aurc,seconds"]
    for e in range(1, 21):
        ratio = f"{100.0 * e:g}" if e % 2 else "nan"  # measured on odd epochs: 100, 300, ..., 1900
        lines.append(f"{e},{1 / e:g},0.1,2000,{1e-3 / e:g},{ratio},,1.5")
    (new / "metrics.csv").write_text("\n".join(lines) + "\n")
    old = make_run(tmp_path / "old")
    (old / "metrics.csv").write_text("epoch,loss,segmentation,ranking,val_dice,val_aurc,seconds\n1,1,1,0,0.5,0.2,3\n")
    history = load_run_results(new).training
    assert history is not None and history.epochs.tolist() == list(range(1, 21))
    assert history.get("lr")[1] == pytest.approx(5e-4) and np.isnan(history.get("val_aurc")).all()
    assert np.isnan(history.get("grad_ratio")[1]) and history.get("grad_segmentation") is None
    assert load_run_results(old).training.get("grad_ratio") is None
    html = write_report([new, old], tmp_path / "report.html").read_text()
    assert '<section id="training">' in html and 'id="fig-training"' in html
    rows = {r[0]: r for r in table_rows(html, "training-summary")[1:]}
    # 10 measured epochs: first tenth = epoch 1 (100), last tenth = epoch 19 (1900)
    assert rows["new"][1:] == ["20", "2e+03", "5e-05", "100", "1.9e+03"]
    assert rows["old"][1:] == ["1", "n/a", "n/a", "n/a", "n/a"]
    assert "training.png" in {p.name for p in figures_dir(tmp_path / "report.html").iterdir()}


def test_report_escapes_script_in_case_ids_class_names_labels_and_folders(tmp_path: Path) -> None:
    """Text from the run folders (case ids, class names, the uncertainty name, the folder, config.yaml) and the labels
    never becomes markup."""
    script = "<script>alert(1)</script>"
    cases = (script, "b", "c", "d")

    def renamed(values):
        return {c: {(script if k == "a" else k): v for k, v in m.items()} for c, m in values.items()}

    runs = []
    for name, dice, coverage in (("base", BASE_DICE, BASE_COVERAGE), ("better", BETTER_DICE, BETTER_COVERAGE)):
        run = make_run(tmp_path / f"{name}{script}", renamed(dice), renamed(coverage), cases=cases)
        path = run / "evaluation" / "evaluation.json"
        content = json.loads(path.read_text())
        content["class_names"], content["uncertainty"] = ["background", script], script
        path.write_text(json.dumps(content))
        (run / "config.yaml").write_text(f"# {script}\nseed: 0\n")
        runs.append(run)
    html = write_report(runs, tmp_path / "r.html", labels=[script, "other"], figure_formats=()).read_text()
    assert "<script" not in html.lower()
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 5


def test_report_has_a_summary_line_contents_and_separates_runs_on_other_data(tmp_path: Path) -> None:
    """The lowest AURC is named at the top; a run evaluated on other reference labels is not paired case by case."""
    from ._fixtures import make_run

    base = make_run(tmp_path / "base", everything=False, extra={"reference_sha256": "ab" * 32})
    other = make_run(tmp_path / "other", everything=False, aurc=0.1, extra={"reference_sha256": "cd" * 32})
    html = write_report([base, other], tmp_path / "r.html").read_text()
    assert 'class="summary">Lowest AURC: <strong>other</strong>' in html and "10.000 %" in html
    assert '<nav class="contents">' in html and 'href="#dice-at-coverage"' in html
    assert "not compared case by case" in html and 'id="dice-difference"' not in html


def test_write_report_stopped_midway_keeps_the_old_page_and_figures(
    two_runs: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from selectseg.report import html

    out = write_report([two_runs[0]], tmp_path / "r.html", figure_formats=("png",))
    before = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert any(name.startswith("r_figures/") for name in before)

    def fail(*args: object, **kwargs: object) -> str:
        raise RuntimeError("killed while rendering")

    monkeypatch.setattr(html, "render_html", fail)
    with pytest.raises(RuntimeError, match="killed"):
        write_report(list(two_runs), out, figure_formats=("png", "svg"))
    after = {str(p.relative_to(tmp_path)): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # the old page and its figures, whole; the staging folder is gone
