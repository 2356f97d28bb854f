from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import mannwhitneyu

from selectseg.metrics.quality import ood_auroc, quality_control_curve

from ..reference import quality as ref


def _cases(rng: np.random.Generator, n: int, levels: int | None) -> tuple[np.ndarray, np.ndarray]:
    unc = rng.random(n) if levels is None else rng.integers(0, levels, n) / levels
    dice = np.clip(1 - unc * rng.random(n) - 0.2 * rng.random(n), 0, 1)
    return unc, dice


# -------------------------------------------------------------------------------------------------- quality control


def test_quality_control_curve_hand_case() -> None:
    qc = quality_control_curve([0.9, 0.1, 0.5, 0.3], [0.5, 0.95, 0.9, 0.6], tau=0.8)
    np.testing.assert_allclose(qc.fraction_flagged, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(qc.fraction_failing, [0.5, 0.25, 0.25, 0, 0])
    np.testing.assert_allclose(qc.ideal_fraction_failing, [0.5, 0.25, 0, 0, 0])
    assert (qc.auc, qc.auc_ideal, qc.d_auc) == pytest.approx((0.1875, 0.125, 0.0625))


def test_quality_control_curve_perfect_worst_and_no_failures() -> None:
    dice = np.array([0.2, 0.5, 0.85, 0.9, 0.95])
    assert quality_control_curve(1 - dice, dice).d_auc == pytest.approx(0.0, abs=1e-15)  # oracle
    worst = quality_control_curve(dice, dice)  # failing images flagged last
    np.testing.assert_allclose(worst.fraction_failing, [0.4, 0.4, 0.4, 0.4, 0.2, 0.0])
    assert worst.d_auc > 0
    none = quality_control_curve([0.3, 0.1], [0.9, 1.0])
    assert none.auc == none.auc_ideal == none.d_auc == 0.0
    assert quality_control_curve(torch.tensor([0.5]), torch.tensor([0.1])).auc == pytest.approx(0.5)  # one image


def test_quality_control_curve_tau_is_a_strict_threshold() -> None:
    assert quality_control_curve([1.0, 0.0], [0.8, 0.9], tau=0.8).fraction_failing[0] == 0.0  # 0.8 is not < 0.8
    assert quality_control_curve([1.0, 0.0], [0.8, 0.9], tau=0.85).fraction_failing[0] == 0.5


@pytest.mark.parametrize("levels", [None, 2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_quality_control_curve_equals_expected_curve_over_tie_orders(levels: int | None, seed: int) -> None:
    rng = np.random.default_rng(seed)
    unc, dice = _cases(rng, 7, levels)
    qc = quality_control_curve(unc, dice, tau=0.75)
    want = ref.expected_qc_curve(unc.tolist(), dice.tolist(), 0.75)
    np.testing.assert_allclose(qc.fraction_failing, want, atol=1e-12)
    np.testing.assert_allclose(qc.ideal_fraction_failing, ref.ideal_qc_curve(dice.tolist(), 0.75), atol=1e-15)
    assert qc.auc == pytest.approx(ref.trapezoid(want), abs=1e-12)
    assert qc.auc_ideal == pytest.approx(ref.trapezoid(ref.ideal_qc_curve(dice.tolist(), 0.75)), abs=1e-12)
    assert qc.d_auc >= -1e-15


def test_quality_control_curve_does_not_depend_on_the_order_of_tied_images(rng: np.random.Generator) -> None:
    unc, dice = _cases(rng, 60, 4)
    qc = quality_control_curve(unc, dice)
    for _ in range(5):
        perm = rng.permutation(60)
        other = quality_control_curve(unc[perm], dice[perm])
        np.testing.assert_allclose(other.fraction_failing, qc.fraction_failing, atol=1e-15)
        assert other.auc == pytest.approx(qc.auc, abs=1e-15)


def test_quality_control_curve_errors() -> None:
    with pytest.raises(ValueError, match="1-D of one length"):
        quality_control_curve([0.1, 0.2], [0.9])
    with pytest.raises(ValueError, match="at least one image"):
        quality_control_curve([], [])
    with pytest.raises(ValueError, match="finite"):
        quality_control_curve([np.nan], [0.9])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        quality_control_curve([0.1], [1.2])
    with pytest.raises(ValueError, match="tau"):
        quality_control_curve([0.1], [0.9], tau=1.5)
    with pytest.raises(TypeError, match="tau"):
        quality_control_curve([0.1], [0.9], tau="0.8")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="numpy array"):
        quality_control_curve({0.1}, [0.9])  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------- AUROC


@pytest.mark.parametrize("levels", [None, 3])
@pytest.mark.parametrize(("n", "m"), [(1, 1), (3, 5), (40, 25)])
def test_ood_auroc_matches_mann_whitney_and_all_pairs(
    rng: np.random.Generator, levels: int | None, n: int, m: int
) -> None:
    draw = (lambda k: rng.random(k)) if levels is None else (lambda k: rng.integers(0, levels, k).astype(float))
    scores_in, scores_out = draw(n), draw(m) + 0.2
    got = ood_auroc(scores_in, scores_out)
    assert got == pytest.approx(ref.all_pairs_auroc(scores_in.tolist(), scores_out.tolist()), abs=1e-12)
    u = mannwhitneyu(scores_out, scores_in, alternative="two-sided").statistic
    assert got == pytest.approx(u / (n * m), abs=1e-12)


def test_ood_auroc_hand_cases() -> None:
    assert ood_auroc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert ood_auroc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert ood_auroc([0.5, 0.5], [0.5]) == 0.5  # ties count 1/2
    assert ood_auroc(torch.tensor([0.1, 0.2, 0.4], dtype=torch.float64), np.array([0.3, 0.4])) == pytest.approx(0.75)


def test_ood_auroc_errors() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        ood_auroc([], [0.1])
    with pytest.raises(ValueError, match="1-D"):
        ood_auroc(np.zeros((2, 2)), [0.1])
    with pytest.raises(ValueError, match="finite"):
        ood_auroc([0.1], [np.inf])
    with pytest.raises(TypeError, match="numpy array"):
        ood_auroc({0.1}, [0.2])  # type: ignore[arg-type]
