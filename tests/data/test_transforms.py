from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from selectseg.data import eval_transforms, make_synthetic_dataset, train_transforms


def sample(spatial_dims: int, size: int, num_classes: int = 3) -> dict[str, np.ndarray]:
    case = make_synthetic_dataset(num_cases=1, spatial_dims=spatial_dims, size=size, num_classes=num_classes)[0]
    return {"image": case.image, "label": case.labels}


@pytest.mark.parametrize(
    ("spatial_dims", "size", "patch"), [(2, 48, (32, 32)), (2, 48, (16, 40)), (3, 24, (16, 16, 8))]
)
@pytest.mark.parametrize("augment", [True, False])
def test_train_transforms_output_patches(spatial_dims, size, patch, augment):
    data = sample(spatial_dims, size)
    data["case_id"] = "kept"  # type: ignore[assignment]
    transform = train_transforms(spatial_dims=spatial_dims, patch_size=patch, augment=augment)
    for seed in range(4):
        out = transform.set_random_state(seed)(data)
        assert type(out["image"]) is torch.Tensor and type(out["label"]) is torch.Tensor
        assert tuple(out["image"].shape) == (1, *patch) and out["image"].dtype == torch.float32
        assert tuple(out["label"].shape) == (3, *patch) and out["label"].dtype == torch.int64
        assert set(out["label"].unique().tolist()) <= {0, 1, 2}
        assert out["case_id"] == "kept"
    original = sample(spatial_dims, size)
    assert np.array_equal(data["image"], original["image"]) and np.array_equal(data["label"], original["label"])


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_train_transforms_are_deterministic_under_set_random_state(spatial_dims):
    data = sample(spatial_dims, 32 if spatial_dims == 2 else 20)
    patch = (24,) * spatial_dims if spatial_dims == 2 else (12, 12, 12)
    transform = train_transforms(spatial_dims=spatial_dims, patch_size=patch)
    first = [transform.set_random_state(7)(data) for _ in range(2)]
    for key in ("image", "label"):
        assert torch.equal(first[0][key], first[1][key])
    outputs = [train_transforms(spatial_dims=spatial_dims, patch_size=patch).set_random_state(7)(data)]
    assert torch.equal(outputs[0]["image"], first[0]["image"])  # a new compose with the same seed agrees
    other = transform.set_random_state(8)(data)
    assert not torch.equal(other["image"], first[0]["image"])


def test_train_transforms_keep_image_labels_and_annotators_aligned():
    label = np.zeros((2, 30, 30), np.int64)
    label[:, 5:12, 8:20] = 1
    label[1, 5:12, 20] = 2  # the second annotator differs by one column
    data = {"image": (label[:1] > 0).astype(np.float32), "label": label}
    transform = train_transforms(spatial_dims=2, patch_size=(16, 16), normalize=False)
    for seed in range(20):
        out = transform.set_random_state(seed)(data)
        image, labels = out["image"][0], out["label"]
        assert torch.equal(image > 0.5, labels[0] > 0)  # intensity changes stay within +-0.2
        assert torch.equal(labels[0] > 0, (labels[1] > 0) & (labels[1] != 2))


def test_train_transforms_pad_images_smaller_than_the_patch():
    label = np.ones((2, 10, 12), np.int64)
    data = {"image": np.ones((1, 10, 12), np.float32), "label": label}
    out = train_transforms(spatial_dims=2, patch_size=(16, 16), normalize=False).set_random_state(0)(data)
    assert tuple(out["image"].shape) == (1, 16, 16) and tuple(out["label"].shape) == (2, 16, 16)
    assert int(out["label"].sum()) == label.sum()  # every labelled pixel kept, padding is background


def test_train_transforms_foreground_fraction():
    label = np.zeros((1, 64, 64), np.int64)
    label[0, 60:62, 2:4] = 1
    data = {"image": np.zeros((1, 64, 64), np.float32), "label": label}
    always = train_transforms(spatial_dims=2, patch_size=(16, 16), augment=False, foreground_fraction=1.0)
    never = train_transforms(spatial_dims=2, patch_size=(16, 16), augment=False, foreground_fraction=0.0)
    hits_always = [bool(always.set_random_state(s)(data)["label"].any()) for s in range(20)]
    hits_never = [bool(never.set_random_state(s)(data)["label"].any()) for s in range(20)]
    assert all(hits_always) and sum(hits_never) < 10


def test_train_transforms_all_background_does_not_warn():
    data = {"image": np.zeros((1, 20, 20), np.float32), "label": np.zeros((1, 20, 20), np.int64)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = train_transforms(spatial_dims=2, patch_size=(8, 8)).set_random_state(0)(data)
    assert tuple(out["label"].shape) == (1, 8, 8)


def test_train_transforms_normalise_before_cropping():
    rng = np.random.default_rng(0)
    data = {"image": (rng.normal(size=(2, 64, 64)) * [[[5.0]], [[0.1]]] + 100).astype(np.float32)}
    data["label"] = np.zeros((1, 64, 64), np.int64)  # type: ignore[assignment]
    out = train_transforms(spatial_dims=2, patch_size=(64, 64), augment=False).set_random_state(0)(data)
    assert out["image"].mean(dim=(1, 2)).abs().max() < 1e-4
    assert torch.allclose(out["image"].std(dim=(1, 2)), torch.ones(2), atol=1e-2)


def test_eval_transforms():
    data = {"image": np.arange(24, dtype=np.float32).reshape(2, 3, 4), "label": np.ones((1, 3, 4), np.uint8)}
    out = eval_transforms()(data)
    assert out["image"].dtype == torch.float32 and tuple(out["image"].shape) == (2, 3, 4)
    assert out["label"].dtype == torch.int64 and torch.equal(out["label"], torch.ones(1, 3, 4, dtype=torch.int64))
    assert out["image"].mean(dim=(1, 2)).abs().max() < 1e-5
    assert np.array_equal(data["image"], np.arange(24, dtype=np.float32).reshape(2, 3, 4))  # input untouched
    raw = eval_transforms(normalize=False)({"image": data["image"]})
    assert "label" not in raw and torch.equal(raw["image"], torch.from_numpy(data["image"]))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"spatial_dims": 4, "patch_size": (8, 8)}, ValueError, "`spatial_dims` to be 2 or 3"),
        ({"spatial_dims": 2, "patch_size": 8}, TypeError, "`patch_size` to be a sequence"),
        ({"spatial_dims": 2, "patch_size": (8, 8, 8)}, ValueError, "`patch_size` to have 2 entries"),
        ({"spatial_dims": 2, "patch_size": (8, 0)}, ValueError, "`patch_size` to be an int >= 1"),
        ({"spatial_dims": 2, "patch_size": (8, 8.0)}, TypeError, "`patch_size`"),
        ({"spatial_dims": 2, "patch_size": (8, 8), "foreground_fraction": "all"}, TypeError, "`foreground_fraction`"),
        ({"spatial_dims": 2, "patch_size": (8, 8), "foreground_fraction": 1.5}, ValueError, r"in \[0, 1\]"),
    ],
)
def test_train_transforms_reject_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        train_transforms(**kwargs)
