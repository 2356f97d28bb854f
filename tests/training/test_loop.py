from __future__ import annotations

import csv
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from selectseg.training import ProgressEvent, load_config, load_model, train

TINY = [
    "data.synthetic.num_train=6",
    "data.synthetic.num_test=2",
    "data.synthetic.size=16",
    "data.val_fraction=0.34",
    "model.channels=[4,8]",
    "model.num_res_units=1",
    "optim.batch_size=2",
    "optim.lr=1e-3",
    "device=cpu",
    "tensorboard=false",
]


def tiny(*extra: str):
    return load_config(overrides=[*TINY, *extra])


def weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_writes_a_complete_run_folder(tmp_path: Path) -> None:
    events: list[ProgressEvent] = []
    result = train(tiny("optim.epochs=2", "loss.ranking=exact"), tmp_path / "run", progress=events.append)
    run = tmp_path / "run"
    assert {p.name for p in run.iterdir()} == {"config.yaml", "run.json", "metrics.csv", "checkpoints", "model.pt"}
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    assert float(rows[0]["ranking"]) > 0  # the uncertainty-aware loss is on
    assert 0 <= float(rows[1]["val_dice"]) <= 1 and 0 <= float(rows[1]["val_aurc"]) <= 1
    info = json.loads((run / "run.json").read_text())
    assert info["class_names"] == ["background", "structure"]
    assert len(info["train_cases"]) == 4 and len(info["val_cases"]) == 2
    import monai
    import numpy

    assert info["versions"]["monai"] == monai.__version__ and info["versions"]["numpy"] == numpy.__version__
    assert info["versions"]["torch"] in (torch.__version__, torch.__version__.split("+")[0])
    assert [e.kind for e in events].count("epoch") == 2
    assert any(e.kind == "step" and set(e.parts) == {"total", "segmentation", "ranking", "guidance"} for e in events)
    assert weights_equal(load_model(run / "model.pt").state_dict(), result.model.state_dict())
    assert not list(run.rglob("*.tmp"))


def test_kfold_validation_holds_out_one_fold(tmp_path: Path) -> None:
    train(tiny("optim.epochs=1", "data.folds=3", "data.fold=1"), tmp_path / "run")
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert len(info["val_cases"]) == 2 and len(info["train_cases"]) == 4
    with pytest.raises(ValueError, match=r"`data.fold` in \[0, 3\)"):
        tiny("data.folds=3", "data.fold=3")
    with pytest.raises(ValueError, match="number of subjects"):
        train(tiny("data.folds=9"), tmp_path / "run2")


def test_baseline_logs_zero_ranking(tmp_path: Path) -> None:
    result = train(tiny("optim.epochs=1"), tmp_path / "run")
    assert result.history[0]["ranking"] == 0.0


def test_training_is_deterministic(tmp_path: Path) -> None:
    a = train(tiny("optim.epochs=2", "loss.ranking=sampled", "model.dropout=0.2"), tmp_path / "a")
    b = train(tiny("optim.epochs=2", "loss.ranking=sampled", "model.dropout=0.2"), tmp_path / "b")
    c = train(tiny("optim.epochs=2", "loss.ranking=sampled", "model.dropout=0.2", "seed=1"), tmp_path / "c")
    assert weights_equal(a.model.state_dict(), b.model.state_dict())
    assert [r["val_aurc"] for r in a.history] == [r["val_aurc"] for r in b.history]
    assert [r["loss"] for r in a.history] == [r["loss"] for r in b.history]
    assert not weights_equal(a.model.state_dict(), c.model.state_dict())


def test_resume_to_more_epochs_equals_one_run(tmp_path: Path) -> None:
    whole = train(tiny("optim.epochs=3", "loss.ranking=exact"), tmp_path / "whole")
    train(tiny("optim.epochs=1", "loss.ranking=exact"), tmp_path / "parts")
    resumed = train(tiny("optim.epochs=3", "loss.ranking=exact"), tmp_path / "parts", resume=True)
    assert weights_equal(whole.model.state_dict(), resumed.model.state_dict())
    assert _strip(whole.history) == _strip(resumed.history)


def test_resume_takes_saved_config_and_refuses_a_different_one(tmp_path: Path) -> None:
    train(tiny("optim.epochs=1"), tmp_path / "run")
    again = train(None, tmp_path / "run", resume=True)  # finished: nothing to redo
    assert len(again.history) == 1
    with pytest.raises(ValueError, match=r"different config \(loss.ranking: saved 'none', given 'exact'\)"):
        train(tiny("optim.epochs=1", "loss.ranking=exact"), tmp_path / "run", resume=True)


def test_run_folder_errors(tmp_path: Path) -> None:
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("")
    with pytest.raises(ValueError, match=r"is not empty; resume it \(--resume"):
        train(tiny(), tmp_path / "busy")
    with pytest.raises(ValueError, match=r"Cannot resume: .*config\.yaml' not found"):
        train(tiny(), tmp_path / "new", resume=True)
    with pytest.raises(ValueError, match="A config is needed"):
        train(None, tmp_path / "new2")


def test_foreign_checkpoint_stops_before_training(tmp_path: Path) -> None:
    train(tiny("optim.epochs=1"), tmp_path / "a")
    train(tiny("optim.epochs=1", "model.channels=[8,16]"), tmp_path / "b")
    # b's checkpoint put into a: another architecture.
    (tmp_path / "a" / "checkpoints" / "last.pt").write_bytes((tmp_path / "b" / "checkpoints" / "last.pt").read_bytes())
    with pytest.raises(ValueError, match="another architecture"):
        train(tiny("optim.epochs=2"), tmp_path / "a", resume=True)


def test_missing_dataset_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing"):
        train(tiny(f"data.path={tmp_path / 'missing'}"), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # nothing written before the data are checked


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "selectseg", *args]


def test_kill_9_then_resume_ends_like_an_uninterrupted_run(tmp_path: Path) -> None:
    options = [f"--set={o}" for o in [*TINY, "data.synthetic.num_train=12", "data.synthetic.size=32"]]
    options += ["--ranking", "exact", "--epochs", "12"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_cli("train", "--out", str(tmp_path / "whole"), *options), check=True, env=env, capture_output=True)
    killed = tmp_path / "killed"
    process = subprocess.Popen(_cli("train", "--out", str(killed), *options), env=env, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (killed / "checkpoints" / "last.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # into a later epoch, possibly mid-write
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (killed / "model.pt").exists(), "the run finished before it could be killed; make it longer"
    subprocess.run(_cli("train", "--out", str(killed), "--resume"), check=True, env=env, capture_output=True)
    assert weights_equal(
        load_model(tmp_path / "whole" / "model.pt").state_dict(), load_model(killed / "model.pt").state_dict()
    )

    def metrics(path: Path) -> list[dict[str, str]]:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(path.open())]

    assert metrics(tmp_path / "whole" / "metrics.csv") == metrics(killed / "metrics.csv")


def test_layer_ensemble_and_edue_training(tmp_path: Path) -> None:
    from selectseg.runs.config import METHODS

    heads = ["model.channels=[4,8,8]"]
    le = train(tiny("optim.epochs=1", *METHODS["layer_ensemble"], *heads), tmp_path / "le")
    assert le.history[0]["guidance"] == 0.0
    edue = train(tiny("optim.epochs=1", "loss.ranking=exact", *METHODS["edue"], *heads), tmp_path / "edue")
    row = edue.history[0]
    assert row["guidance"] > 0 and row["ranking"] > 0  # EDUE + ranking loss combine
    assert row["loss"] == pytest.approx(row["segmentation"] + 2000 * row["ranking"] + row["guidance"], rel=1e-5)
    assert edue.model.num_heads == 2
    rows = list(csv.DictReader((tmp_path / "edue" / "metrics.csv").open()))
    assert float(rows[0]["guidance"]) > 0


def test_heads_config_errors() -> None:
    with pytest.raises(ValueError, match="needs a multi-head network"):
        tiny("loss.heads=all")
    with pytest.raises(ValueError, match=r"needs `loss\.heads: all`"):
        tiny("loss.guidance_weight=1.0")


def test_two_stage_schedule_and_class_weights(tmp_path: Path) -> None:
    """Epoch 1 trains on the segmentation loss alone (total = segmentation), epoch 2 adds the full ranking term;
    class weights reach the loss (a class-count mismatch is an error before training)."""
    run = train(
        tiny("optim.epochs=2", "loss.ranking=exact", "loss.ranking_start_epoch=1", "loss.class_weights=[1, 2]"),
        tmp_path / "two",
    )
    first, second = run.history
    assert first["ranking_weight"] == 0.0 and second["ranking_weight"] == 2000.0
    assert first["loss"] == pytest.approx(first["segmentation"], rel=1e-12) and first["ranking"] >= 0
    assert second["loss"] == pytest.approx(second["segmentation"] + 2000.0 * second["ranking"], rel=1e-5)
    rows = list(csv.DictReader((tmp_path / "two" / "metrics.csv").open()))
    assert [float(r["ranking_weight"]) for r in rows] == [0.0, 2000.0]
    with pytest.raises(ValueError, match=r"one weight per class \(2"):
        train(tiny("optim.epochs=1", "loss.class_weights=[1, 2, 3]"), tmp_path / "bad")
    assert not (tmp_path / "bad" / "model.pt").exists()


class _Stop(Exception):
    pass


def _stop_after(epoch: int):
    def progress(event: ProgressEvent) -> None:
        if event.kind == "epoch" and event.epoch == epoch:  # after the checkpoint of that epoch was written
            raise _Stop

    return progress


def _strip(history: list[dict[str, float]]) -> list[dict[str, float | None]]:
    """The logged rows without the timings, NaN (not measured) as None so that rows compare equal."""
    return [{k: None if math.isnan(v) else v for k, v in r.items() if k != "seconds"} for r in history]


def test_lr_schedule_and_balanced_weight_resume_exactly(tmp_path: Path) -> None:
    """2 steps per epoch (4 training cases, batch 2): the logged lr is the mean of the schedule's two steps; a run
    stopped after epoch 1 and resumed ends with the weights and metrics (balanced weight included) of an
    uninterrupted one."""
    from selectseg.training.schedule import lr_factor

    options = [
        "optim.epochs=3",
        "loss.ranking=exact",
        "optim.schedule=cosine",
        "optim.warmup_epochs=1",
        "loss.ranking_balance=0.5",
        "loss.grad_norm_every=3",
    ]
    whole = train(tiny(*options), tmp_path / "whole")
    expected = [1e-3 * (lr_factor("cosine", 2 * e, 6, 2) + lr_factor("cosine", 2 * e + 1, 6, 2)) / 2 for e in range(3)]
    assert [r["lr"] for r in whole.history] == pytest.approx(expected, rel=1e-12)
    with pytest.raises(_Stop):
        train(tiny(*options), tmp_path / "parts", progress=_stop_after(1))
    assert not (tmp_path / "parts" / "model.pt").exists()
    resumed = train(tiny(*options), tmp_path / "parts", resume=True)
    assert weights_equal(whole.model.state_dict(), resumed.model.state_dict())
    assert _strip(whole.history) == _strip(resumed.history)
    # steps 0 and 3 measured (every 3): epochs 1 and 2 have gradient norms, epoch 3 (steps 4, 5) has none
    assert [math.isnan(r["grad_segmentation"]) for r in whole.history] == [False, False, True]


def test_gradient_measurement_does_not_change_training(tmp_path: Path) -> None:
    """Measuring every step (one extra backward per part) leaves the optimizer's steps exactly as without it."""
    a = train(tiny("optim.epochs=2", "loss.ranking=exact", "loss.grad_norm_every=0"), tmp_path / "a")
    b = train(tiny("optim.epochs=2", "loss.ranking=exact", "loss.grad_norm_every=1"), tmp_path / "b")
    assert weights_equal(a.model.state_dict(), b.model.state_dict())
    assert all(math.isnan(r["grad_segmentation"]) for r in a.history)
    for row in b.history:
        assert row["grad_segmentation"] > 0 and row["grad_ranking"] > 0 and row["grad_guidance"] == 0
        assert row["grad_ratio"] == pytest.approx(2000 * row["grad_ranking"] / row["grad_segmentation"], rel=0.5)


def test_gradient_norms_match_a_hand_backward() -> None:
    """``_grad_norms`` = the norm of ``.grad`` after a plain backward of each part alone; 0 for a constant part."""
    from selectseg.training.loop import _grad_norms

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    x = torch.randn(5, 3)
    out = net(x)
    a, b = out[:, 0].pow(2).mean(), out[:, 1].sum()
    norms = _grad_norms((a, b, torch.zeros(())), net)
    for part, norm in zip((a, b), norms):
        net.zero_grad()
        part.backward(retain_graph=True)
        expected = torch.sqrt(sum(p.grad.pow(2).sum() for p in net.parameters()))
        assert norm == pytest.approx(float(expected), rel=1e-6)
    assert norms[2] == 0.0


def test_balanced_weight_hits_its_fraction(tmp_path: Path) -> None:
    """With momentum 0 and a measurement every step, each step's weight makes |w g_rank| = f |g_seg| exactly."""
    run = train(
        tiny(
            "optim.epochs=2",
            "loss.ranking=exact",
            "loss.ranking_balance=0.25",
            "loss.balance_momentum=0",
            "loss.grad_norm_every=1",
        ),
        tmp_path / "run",
    )
    for row in run.history:
        assert row["grad_ratio"] == pytest.approx(0.25, rel=1e-9)
        assert 0 < row["ranking_weight"] < 2000  # not the fixed weight


def test_snapshots_are_saved_and_loaded(tmp_path: Path) -> None:
    from selectseg.evaluation import load_run
    from selectseg.runs.checkpoint import load_checkpoint

    with pytest.raises(_Stop):
        train(tiny("optim.epochs=3", "snapshot_epochs=[1,2]"), tmp_path / "run", progress=_stop_after(2))
    after_two = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    train(tiny("optim.epochs=3", "snapshot_epochs=[1,2]"), tmp_path / "run", resume=True)
    assert sorted(p.name for p in (tmp_path / "run" / "snapshots").iterdir()) == ["epoch_0001.pt", "epoch_0002.pt"]
    assert weights_equal(load_run(tmp_path / "run", device="cpu", snapshot=2).model.state_dict(), after_two)
    assert not weights_equal(load_run(tmp_path / "run", device="cpu").model.state_dict(), after_two)
    with pytest.raises(ValueError, match=r"snapshot after epoch 3 .*found \['epoch_0001.pt', 'epoch_0002.pt'\]"):
        load_run(tmp_path / "run", snapshot=3)


def test_loss_from_config_builds_the_whole_training_loss() -> None:
    from selectseg.losses import MultiHeadSelectiveLoss, SelectiveSegmentationLoss
    from selectseg.runs.config import METHODS
    from selectseg.training.loop import loss_from_config

    baseline = loss_from_config(tiny().loss)
    assert isinstance(baseline, SelectiveSegmentationLoss) and baseline.ranking_loss is None
    exact = loss_from_config(tiny("loss.ranking=sampled", "loss.margin=0.2", "loss.ranking_weight=7").loss)
    assert isinstance(exact, SelectiveSegmentationLoss) and exact.ranking_weight == 7.0
    assert exact.ranking_loss is not None and (exact.ranking_loss.mode, exact.ranking_loss.margin) == ("sampled", 0.2)
    assert exact.validate_args and exact.ranking_loss.validate_args
    edue = loss_from_config(tiny("loss.ranking=exact", *METHODS["edue"]).loss, validate_args=False)
    assert isinstance(edue, MultiHeadSelectiveLoss) and edue.guidance_weight == 1.0
    assert not edue.head_loss.validate_args and not edue.head_loss.ranking_loss.validate_args
    edue.ranking_weight = 3.0  # the loop's per-epoch schedule sets the weight, never rebuilds the total
    assert edue.head_loss.ranking_weight == 3.0


def test_a_non_finite_training_loss_stops_naming_epoch_and_step(tmp_path: Path, monkeypatch) -> None:
    from selectseg.training import loop

    build = loop.loss_from_config

    def nan_loss(loss, *, validate_args=True):
        built = build(loss, validate_args=validate_args)
        segmentation = built.segmentation_loss
        built.segmentation_loss = lambda logits, labels: segmentation(logits, labels) * float("nan")
        return built

    monkeypatch.setattr(loop, "loss_from_config", nan_loss)
    match = (
        r"finite training loss, but got nan at epoch 1, step 1 of \d+, cases "
        r"\['synth_train_\d+', 'synth_train_\d+'\] \({'total': nan"
    )
    with pytest.raises(ValueError, match=match):
        train(tiny("optim.epochs=1", "loss.ranking=exact"), tmp_path / "run")


def test_a_non_finite_step_reaches_neither_the_weights_nor_a_checkpoint(tmp_path: Path, monkeypatch) -> None:
    from selectseg.runs.checkpoint import load_checkpoint
    from selectseg.training import loop

    build, broken = loop.loss_from_config, {"now": False}

    def nan_after_one_epoch(loss, *, validate_args=True):
        built = build(loss, validate_args=validate_args)
        segmentation = built.segmentation_loss
        built.segmentation_loss = lambda logits, labels: (
            segmentation(logits, labels) * (float("nan") if broken["now"] else 1.0)
        )
        return built

    monkeypatch.setattr(loop, "loss_from_config", nan_after_one_epoch)
    original_step, steps = torch.optim.Adam.step, {"taken": 0, "after_epoch_1": -1}

    def counting_step(self, *args, **kwargs):
        steps["taken"] += 1
        return original_step(self, *args, **kwargs)

    def progress(event: ProgressEvent) -> None:
        if event.kind == "epoch" and not broken["now"]:  # epoch 1 trains normally, epoch 2 turns NaN
            broken["now"], steps["after_epoch_1"] = True, steps["taken"]

    monkeypatch.setattr(torch.optim.Adam, "step", counting_step)
    with pytest.raises(
        ValueError,
        match=r"at epoch 2, step 1 of \d+, cases \[.synth_train_\d+.*last.pt holds the last finished epoch, 1\)",
    ):
        train(tiny("optim.epochs=3", "data.val_fraction=0"), tmp_path / "run", progress=progress)
    run = tmp_path / "run"
    assert not (run / "model.pt").exists()
    saved = load_checkpoint(run / "checkpoints" / "last.pt")
    assert saved["epoch"] == 1 and all(torch.isfinite(v).all() for v in saved["model"].values())
    assert steps["taken"] == steps["after_epoch_1"] > 0  # the NaN step made no optimizer step
