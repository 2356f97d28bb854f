from __future__ import annotations

import os
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from selectseg._io import atomic_write, atomic_write_text
from selectseg.models import ModelSpec, build_model
from selectseg.runs.checkpoint import (
    capture_rng_state,
    load_checkpoint,
    load_model,
    restore_rng_state,
    save_checkpoint,
)


def test_atomic_write_leaves_old_file_on_failure(tmp_path: Path) -> None:
    path = atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError), atomic_write(path, "w") as handle:
        handle.write("half")
        raise RuntimeError("killed")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]  # no temp file left


def test_rng_state_round_trip() -> None:
    random.seed(1)
    np.random.seed(1)  # noqa: NPY002 - the legacy global state is what is captured
    torch.manual_seed(1)
    state = capture_rng_state()
    first = (random.random(), np.random.rand(), torch.rand(1).item())  # noqa: NPY002
    restore_rng_state(state)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == first  # noqa: NPY002


def test_checkpoint_round_trip_with_weights_only(tmp_path: Path) -> None:
    spec = ModelSpec(channels=(4, 8))
    model = build_model(spec)
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(1, 1, 8, 8)).sum().backward()
    optimizer.step()
    path = save_checkpoint(
        tmp_path / "c.pt",
        {
            "model": model.state_dict(),
            "spec": spec.to_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": capture_rng_state(),
            "history": [{"epoch": 1.0}],
        },
    )
    payload = load_checkpoint(path, spec=spec)
    restored = build_model(spec)
    restored.load_state_dict(payload["model"])
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), restored.state_dict().values()))
    torch.optim.Adam(restored.parameters()).load_state_dict(payload["optimizer"])
    restore_rng_state(payload["rng"])
    loaded = load_model(path)
    assert not loaded.training
    assert loaded.spec == spec


def test_checkpoint_from_another_architecture_is_refused(tmp_path: Path) -> None:
    spec = ModelSpec(channels=(4, 8))
    path = save_checkpoint(tmp_path / "c.pt", {"model": build_model(spec).state_dict(), "spec": spec.to_dict()})
    with pytest.raises(ValueError, match=r"another architecture \(channels: checkpoint \[4, 8\] vs expected"):
        load_checkpoint(path, spec=ModelSpec(channels=(8, 16)))


def test_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not found"):
        load_checkpoint(tmp_path / "none.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(1)}, foreign)
    with pytest.raises(ValueError, match="not a selectseg checkpoint"):
        load_checkpoint(foreign)
    mismatched = tmp_path / "mismatched.pt"
    spec = ModelSpec(channels=(4, 8))
    torch.save({"model": build_model(ModelSpec(channels=(8, 16))).state_dict(), "spec": spec.to_dict()}, mismatched)
    with pytest.raises(ValueError, match="does not fit its recorded architecture"):
        load_model(mismatched)


def test_pickled_code_is_not_executed(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "spec": {}, "x": Evil()}, path)
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(path)


def test_atomic_writes_get_the_usual_permissions(tmp_path) -> None:
    import os
    import stat

    from selectseg._io import atomic_write_text

    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with open(tmp_path / "b.txt", "w") as handle:  # what a plain write gives
            handle.write("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "b.txt").stat().st_mode) == 0o644
