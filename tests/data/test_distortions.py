from __future__ import annotations

import numpy as np
import pytest
import torch

from selectseg.data.distortions import CONTRAST_MAX_REDUCTION, DISTORTIONS, distort, distort_fraction


def _image(rng: np.random.Generator, shape: tuple[int, ...] = (2, 16, 16)) -> np.ndarray:
    return (rng.random(shape) * np.array([1.0, 10.0]).reshape((2,) + (1,) * (len(shape) - 1))).astype(np.float32)


@pytest.mark.parametrize("kind", DISTORTIONS)
@pytest.mark.parametrize("shape", [(2, 16, 16), (2, 6, 7, 8)])
def test_distort_is_deterministic_and_keeps_shape_dtype_and_input(
    rng: np.random.Generator, kind: str, shape: tuple[int, ...]
) -> None:
    image = _image(rng, shape)
    before = image.copy()
    out = distort(image, kind, 0.7, seed=5)
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, distort(image, kind, 0.7, seed=5))
    np.testing.assert_array_equal(image, before)  # input untouched
    assert not np.array_equal(out, image)
    tensor = distort(torch.from_numpy(image).double(), kind, 0.7, seed=5)
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.float64
    np.testing.assert_allclose(tensor.numpy(), out, rtol=1e-5, atol=1e-5)


def test_distort_noise_depends_on_seed_and_scales_with_channel_std(rng: np.random.Generator) -> None:
    image = _image(rng, (2, 64, 64)).astype(np.float64)
    a, b = distort(image, "noise", 0.5, seed=1), distort(image, "noise", 0.5, seed=2)
    assert not np.array_equal(a, b)
    noise_std = (a - image).std(axis=(1, 2))
    np.testing.assert_allclose(noise_std, 0.5 * image.std(axis=(1, 2)), rtol=0.05)
    constant = np.ones((1, 8, 8))
    np.testing.assert_array_equal(distort(constant, "noise", 1.0), constant)  # std 0: no noise


@pytest.mark.parametrize("kind", DISTORTIONS)
def test_distort_severity_zero_is_identity_and_small_severity_is_close(rng: np.random.Generator, kind: str) -> None:
    image = _image(rng)
    out = distort(image, kind, 0.0, seed=3)
    np.testing.assert_array_equal(out, image)
    assert out is not image
    assert np.abs(distort(image, kind, 1e-4, seed=3) - image).max() < 1e-2


def _high_frequency_energy(image: np.ndarray) -> float:
    spectrum = np.abs(np.fft.fftn(image - image.mean(), axes=(-2, -1))) ** 2
    freq = np.sqrt(sum(f**2 for f in np.meshgrid(*(np.fft.fftfreq(s) for s in image.shape[-2:]), indexing="ij")))
    return float(spectrum[..., freq > 0.25].sum())


def test_distort_blur_reduces_high_frequency_energy_more_with_severity(rng: np.random.Generator) -> None:
    image = rng.standard_normal((1, 32, 32))
    energies = [_high_frequency_energy(distort(image, "blur", s)) for s in (0.0, 0.2, 0.6, 1.0)]
    assert energies[0] > energies[1] > energies[2] > energies[3]
    assert energies[3] < 0.01 * energies[0]
    # Only spatial axes are blurred: channels do not mix.
    two = np.stack([np.zeros((8, 8)), np.ones((8, 8))])
    np.testing.assert_allclose(distort(two, "blur", 1.0), two, atol=1e-12)


def test_distort_contrast_keeps_channel_mean_and_shrinks_deviation(rng: np.random.Generator) -> None:
    image = _image(rng).astype(np.float64)
    out = distort(image, "contrast", 0.5)
    np.testing.assert_allclose(out.mean(axis=(1, 2)), image.mean(axis=(1, 2)), rtol=1e-12)
    np.testing.assert_allclose(out.std(axis=(1, 2)), (1 - 0.5 * CONTRAST_MAX_REDUCTION) * image.std(axis=(1, 2)))


def test_distort_errors(rng: np.random.Generator) -> None:
    image = _image(rng)
    with pytest.raises(ValueError, match="Did you mean 'blur'"):
        distort(image, "blurr")
    with pytest.raises(ValueError, match="severity"):
        distort(image, "noise", 1.5)
    with pytest.raises(TypeError, match="severity"):
        distort(image, "noise", "high")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seed"):
        distort(image, "noise", 0.5, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        distort(image, "noise", 0.5, seed=1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating-point"):
        distort(np.zeros((1, 4, 4), np.int64))
    with pytest.raises(TypeError, match="floating-point"):
        distort(torch.zeros((1, 4, 4), dtype=torch.int64))
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        distort([[0.0, 1.0]])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(C, \*S\)"):
        distort(np.zeros(4))
    with pytest.raises(TypeError, match="kind"):
        distort(image, 3)  # type: ignore[arg-type]


@pytest.mark.parametrize(("fraction", "count"), [(0.0, 0), (0.5, 3), (1.0, 6)])
def test_distort_fraction_counts_flags_and_determinism(rng: np.random.Generator, fraction: float, count: int) -> None:
    images = [_image(rng) for _ in range(6)]
    out = distort_fraction(images, fraction, seed=7)
    again = distort_fraction(images, fraction, seed=7)
    assert out.distorted.dtype == np.bool_ and out.distorted.shape == (6,) and int(out.distorted.sum()) == count
    np.testing.assert_array_equal(out.distorted, again.distorted)
    assert out.kinds == again.kinds
    for i, (image, new) in enumerate(zip(images, out.images)):
        np.testing.assert_array_equal(new, again.images[i])
        assert new.shape == image.shape and new.dtype == image.dtype
        if out.distorted[i]:
            assert out.kinds[i] in DISTORTIONS and not np.array_equal(new, image)
        else:
            assert out.kinds[i] is None and new is image


def test_distort_fraction_seed_changes_the_subset_and_kinds_are_respected(rng: np.random.Generator) -> None:
    images = [torch.from_numpy(_image(rng)) for _ in range(20)]
    subsets = {tuple(distort_fraction(images, 0.5, kinds=["contrast"], seed=s).distorted) for s in range(5)}
    assert len(subsets) > 1
    out = distort_fraction(images, 0.5, kinds=("contrast",), seed=0)
    assert {k for k in out.kinds if k is not None} == {"contrast"}
    assert all(isinstance(x, torch.Tensor) for x in out.images)


def test_distort_fraction_errors(rng: np.random.Generator) -> None:
    images = [_image(rng)]
    with pytest.raises(TypeError, match="list of per-image arrays"):
        distort_fraction(np.stack(images), 0.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one image"):
        distort_fraction([], 0.5)
    with pytest.raises(ValueError, match="fraction"):
        distort_fraction(images, 1.5)
    with pytest.raises(TypeError, match="fraction"):
        distort_fraction(images, None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least one of"):
        distort_fraction(images, 0.5, kinds=[])
    with pytest.raises(ValueError, match="Did you mean 'noise'"):
        distort_fraction(images, 0.5, kinds=["nois"])
    with pytest.raises(TypeError, match="kinds"):
        distort_fraction(images, 0.5, kinds="noise")
    with pytest.raises(ValueError, match="severity"):
        distort_fraction(images, 0.5, severity=-0.1)
    with pytest.raises(ValueError, match="seed"):
        distort_fraction(images, 0.5, seed=-3)
    with pytest.raises(TypeError, match="floating-point"):
        distort_fraction([np.zeros((1, 3), np.int32)], 0.5)
    with pytest.raises(ValueError, match=r"\(C, \*S\)"):
        distort_fraction([np.zeros(3)], 0.5)
