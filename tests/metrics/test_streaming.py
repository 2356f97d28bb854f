"""Batches ``(B, *S)`` in the selective functions, and the streaming metrics (update / compute / reset, DDP gather)."""

from __future__ import annotations

import os
import pickle
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from selectseg._validation import UndefinedMetricWarning
from selectseg.metrics import (
    ErrorDetectionMetric,
    ErrorDetectionScores,
    SelectiveDiceMetric,
    pixel_augrc,
    pixel_error_auroc,
    selective_dice_curve,
)

from ._images import random_images

K = 3


def _same_shape(rng: np.random.Generator, n: int = 6, shape: tuple[int, ...] = (5, 7)):
    preds, targets, uncs = [], [], []
    for _ in range(n):
        y = rng.integers(0, K, shape)
        preds.append(np.where(rng.random(shape) < 0.7, y, rng.integers(0, K, shape)))
        targets.append(y)
        uncs.append(rng.integers(0, 9, shape) / 9)
    return preds, targets, uncs


def assert_same_curve(a, b) -> None:
    """Bit-identical: every stored array and every derived figure equal exactly."""
    for name in ("thresholds", "coverage", "dice"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert a.num_images == b.num_images
    assert (a.aurc, a.oracle_aurc, a.excess_aurc) == (b.aurc, b.oracle_aurc, b.excess_aurc)
    np.testing.assert_array_equal(a.image_dice(), b.image_dice())
    for c in (0.3, 0.75, 1.0):
        pa, pb = a.at_coverage(c), b.at_coverage(c)
        assert (pa.threshold, pa.coverage, pa.dice_mean, pa.dice_std, pa.gamma, pa.psi_c) == (
            pb.threshold,
            pb.coverage,
            pb.dice_mean,
            pb.dice_std,
            pb.gamma,
            pb.psi_c,
        )
        np.testing.assert_array_equal(pa.image_coverage, pb.image_coverage)


# ------------------------------------------------------------------------------------------ batches in the functions


@pytest.mark.parametrize("shape", [(5, 7), (3, 4, 5)])
def test_list_stacked_array_and_tensor_give_identical_results(rng, shape):
    preds, targets, uncs = _same_shape(rng, shape=shape)
    as_list = selective_dice_curve(preds, targets, uncs, num_classes=K)
    stacked = [np.stack(preds), np.stack(targets), np.stack(uncs)]
    tensors = [torch.from_numpy(a) for a in stacked]
    for args in (stacked, tensors, [tensors[0], targets, stacked[2]]):  # mixed kinds too
        assert_same_curve(selective_dice_curve(*args, num_classes=K), as_list)
        assert pixel_error_auroc(*args) == pixel_error_auroc(preds, targets, uncs)
        assert pixel_augrc(*args) == pixel_augrc(preds, targets, uncs)


def test_channel_first_batches_and_items_drop_the_singleton_axis(rng):
    preds, targets, uncs = _same_shape(rng)
    expected = selective_dice_curve(preds, targets, uncs, num_classes=K)
    channel_first = torch.from_numpy(np.stack(preds))[:, None]  # MONAI's (B, 1, *S) label map
    assert_same_curve(selective_dice_curve(channel_first, np.stack(targets), np.stack(uncs), num_classes=K), expected)
    items = [p[None] for p in preds]  # decollated channel-first items (1, *S)
    assert_same_curve(selective_dice_curve(items, targets, uncs, num_classes=K), expected)


def test_a_batch_needs_a_spatial_axis_and_matching_shapes():
    with pytest.raises(ValueError, match=r"`uncertainties` to be a batch \(B, \*S\) with at least 2 dimensions"):
        selective_dice_curve(np.zeros((2, 3), int), np.zeros((2, 3), int), np.zeros(2), num_classes=2)
    with pytest.raises(ValueError, match="share one shape"):  # one-hot predictions (B, K, *S) are not label maps
        pixel_error_auroc(np.zeros((2, 2, 3), int), np.zeros((2, 3), int), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="one array per image each, but got 2, 3 and 2"):
        pixel_augrc(np.zeros((2, 3), int), np.zeros((3, 3), int), np.zeros((2, 3)))


# ------------------------------------------------------------------------------------------------ streaming metrics


def test_three_updates_of_two_images_equal_one_call_on_six(rng):
    preds, targets, uncs = random_images(rng, k=K, n=6, levels=9, float32_at=3)  # shapes differ, mixed dtypes
    expected = selective_dice_curve(preds, targets, uncs, num_classes=K)
    dice_metric, error_metric = SelectiveDiceMetric(num_classes=K), ErrorDetectionMetric()
    for i in range(0, 6, 2):
        batch = (preds[i : i + 2], targets[i : i + 2], uncs[i : i + 2])
        dice_metric.update(*batch)
        error_metric.update(*batch)
    assert dice_metric.num_images == 6
    assert_same_curve(dice_metric.compute(), expected)
    scores = error_metric.compute()
    assert isinstance(scores, ErrorDetectionScores)
    assert scores.auroc == pixel_error_auroc(preds, targets, uncs)
    assert scores.augrc == pixel_augrc(preds, targets, uncs)
    wrong = sum(int((p != t).sum()) for p, t in zip(preds, targets))
    assert scores.num_pixels == sum(u.size for u in uncs) and scores.error_rate == wrong / scores.num_pixels


def test_batched_tensor_updates_equal_the_function(rng):
    preds, targets, uncs = _same_shape(rng, n=6, shape=(2, 4, 5))
    expected = selective_dice_curve(preds, targets, uncs, num_classes=K)
    metric = SelectiveDiceMetric(num_classes=K)
    for i in range(0, 6, 3):
        metric.update(*(torch.from_numpy(np.stack(a[i : i + 3]))[:, None] for a in (preds, targets, uncs)))
    assert_same_curve(metric.compute(), expected)
    metric.compute()  # compute does not consume the state
    assert metric.num_images == 6


def test_reset_forgets_and_compute_needs_an_image(rng):
    preds, targets, uncs = _same_shape(rng, n=4)
    metric = SelectiveDiceMetric(num_classes=K)
    metric.update(preds[:2], targets[:2], uncs[:2])
    metric.reset()
    assert metric.num_images == 0
    with pytest.raises(ValueError, match=r"at least one image before `compute\(\)`"):
        metric.compute()
    with pytest.raises(ValueError, match=r"at least one image before `compute\(\)`"):
        ErrorDetectionMetric().compute()
    metric.update(preds[2:], targets[2:], uncs[2:])
    assert_same_curve(metric.compute(), selective_dice_curve(preds[2:], targets[2:], uncs[2:], num_classes=K))


def test_error_metric_warns_when_the_auroc_is_undefined():
    metric = ErrorDetectionMetric()
    y = np.array([[0, 1, 1]])
    metric.update(y, y, np.array([[0.1, 0.2, 0.3]]))
    with pytest.warns(UndefinedMetricWarning, match="undefined with 0 wrong"):
        scores = metric.compute()
    assert np.isnan(scores.auroc) and scores.augrc == 0.0 and scores.error_rate == 0.0


def test_streaming_metrics_reject_bad_options_and_input():
    with pytest.raises(ValueError, match="`num_classes` to be an int >= 2"):
        SelectiveDiceMetric(num_classes=1)
    with pytest.raises(TypeError, match="`sync_on_compute` to be a bool"):
        ErrorDetectionMetric(sync_on_compute=1)  # type: ignore[arg-type]
    metric = SelectiveDiceMetric(num_classes=2)
    with pytest.raises(ValueError, match=r"`targets\[0\]` to hold labels in \[0, 2\)"):
        metric.update(np.zeros((1, 3), int), np.full((1, 3), 2), np.zeros((1, 3)))
    with pytest.raises(TypeError, match="list of per-image arrays or a batch"):
        metric.update("x", np.zeros((1, 3), int), np.zeros((1, 3)))  # type: ignore[arg-type]
    assert metric.num_images == 0  # a rejected batch adds nothing


# ------------------------------------------------------------------------------------------------ DDP (gloo, 2 ranks)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_images() -> list[tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]]:
    """Rank 0: 3 images (float32 uncertainties, one without a wrong pixel); rank 1: 2 images of other shapes."""
    rng = np.random.default_rng(7)
    first = random_images(rng, k=K, n=3, levels=9)
    first = (first[0], first[1], [u.astype(np.float32) for u in first[2]])
    first[0][1] = first[1][1].copy()  # no wrong pixel in this image
    second = random_images(rng, k=K, n=2, levels=9, shapes=((2, 3, 3), (4, 6)))
    return [first, second]


def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    torch.distributed.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        preds, targets, uncs = _rank_images()[rank]
        dice_metric, error_metric = SelectiveDiceMetric(num_classes=K), ErrorDetectionMetric()
        local = SelectiveDiceMetric(num_classes=K, sync_on_compute=False)
        only_rank0 = ErrorDetectionMetric()  # rank 1 adds nothing
        for i in range(len(preds)):  # one image per update
            for metric in (dice_metric, error_metric, local):
                metric.update([preds[i]], [targets[i]], [uncs[i]])
            if rank == 0:
                only_rank0.update(np.stack([preds[i]]), np.stack([targets[i]]), np.stack([uncs[i]]))
        curve = dice_metric.compute()
        result = {
            "arrays": (curve.thresholds, curve.coverage, curve.dice, curve.image_dice()),
            "aurc": (curve.aurc, curve.oracle_aurc),
            "errors": tuple(error_metric.compute()),
            "local": local.compute().aurc,
            "only_rank0": tuple(only_rank0.compute()),
        }
        Path(out, f"rank{rank}.pkl").write_bytes(pickle.dumps(result))
    finally:
        torch.distributed.destroy_process_group()


def test_two_gloo_ranks_compute_the_function_on_all_images(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    parts = _rank_images()
    preds, targets, uncs = (parts[0][j] + parts[1][j] for j in range(3))  # rank 0's images first
    expected = selective_dice_curve(preds, targets, uncs, num_classes=K)
    for rank in range(2):
        got = pickle.loads(Path(tmp_path, f"rank{rank}.pkl").read_bytes())
        for a, b in zip(got["arrays"], (expected.thresholds, expected.coverage, expected.dice, expected.image_dice())):
            np.testing.assert_array_equal(a, b)
        assert got["aurc"] == (expected.aurc, expected.oracle_aurc)
        assert got["errors"][:2] == (pixel_error_auroc(preds, targets, uncs), pixel_augrc(preds, targets, uncs))
        assert got["local"] == selective_dice_curve(*parts[rank], num_classes=K).aurc
        assert got["only_rank0"][:2] == (pixel_error_auroc(*parts[0]), pixel_augrc(*parts[0]))
