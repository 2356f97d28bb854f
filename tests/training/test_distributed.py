"""Two processes on CPU with the gloo backend (what torchrun sets up), checking both ranks end identical."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import torch
import torch.multiprocessing as mp

from selectseg.training import load_config, load_model, train
from selectseg.training.distributed import init_distributed

from .test_loop import TINY, weights_equal


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world_size: int, port: int, out: str) -> None:
    os.environ.update(
        {
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "WORLD_SIZE": str(world_size),
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
        }
    )
    torch.set_num_threads(1)
    config = load_config(overrides=[*TINY, "optim.epochs=2", "loss.ranking=exact", "data.synthetic.num_train=9"])
    result = train(config, Path(out) / "run")
    torch.save(result.model.state_dict(), Path(out) / f"rank{rank}.pt")


def test_two_gloo_processes_end_with_identical_weights(tmp_path: Path) -> None:
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    assert weights_equal(rank0, rank1)
    assert weights_equal(rank0, load_model(tmp_path / "run" / "model.pt").state_dict())
    initial = load_model(tmp_path / "run" / "checkpoints" / "last.pt").state_dict()
    assert weights_equal(rank0, initial)  # the last checkpoint is the final state
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert files == {"config.yaml", "run.json", "metrics.csv", "checkpoints", "model.pt"}  # rank 0 wrote, once


def test_single_process_context_without_torchrun_variables(monkeypatch) -> None:
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    ctx = init_distributed("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.distributed) == (0, 1, True, False)
    assert ctx.mean([1.0, 2.0]) == [1.0, 2.0]


def test_torchrun_command_line(tmp_path: Path) -> None:
    """The documented launch: torchrun -m selectseg train (2 CPU processes, gloo)."""
    import subprocess
    import sys

    torchrun = Path(sys.executable).with_name("torchrun")
    options = [f"--set={o}" for o in TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            "-m",
            "selectseg",
            "train",
            "--out",
            str(tmp_path / "run"),
            "--epochs",
            "1",
            *options,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["world_size"] == 2
    assert result.stderr.count("Trained 1 epoch;") == 1
