"""One writer per run folder: ``folder.lock`` (flock on RUN/.lock), and two ``selectseg train`` into one folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from selectseg.runs import folder

from ..training.test_loop import TINY

HOLD = (
    "import sys, time\nfrom selectseg.runs import folder\n"
    "with folder.lock(sys.argv[1], purpose='hold'):\n"
    "    print('held', flush=True)\n    time.sleep(60)\n"
)


def hold(path: Path) -> subprocess.Popen[str]:
    """A process holding ``path``'s lock until it is killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "held"
    return process


def test_lock_refuses_a_second_process_and_names_the_holder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    holder = hold(run)
    try:
        info = json.loads((run / folder.LOCK).read_text())
        assert info["pid"] == holder.pid and info["purpose"] == "hold" and info["host"]
        match = rf"'.*run' is locked by pid {holder.pid} on host .*hold since"
        with pytest.raises(ValueError, match=match), folder.lock(run, purpose="evaluate"):
            pass
    finally:
        holder.kill()
        holder.wait()
    with folder.lock(run, purpose="evaluate"):  # the holder died (SIGKILL): its lock went with it
        assert json.loads((run / folder.LOCK).read_text())["pid"] == os.getpid()
    assert not (run / folder.LOCK).exists()


def test_lock_is_reentrant_in_one_thread_and_refuses_another_thread(tmp_path: Path) -> None:
    errors: list[str] = []
    with folder.lock(tmp_path, purpose="sweep step"):
        with folder.lock(tmp_path, purpose="train"):
            pass
        assert (tmp_path / folder.LOCK).exists()  # still held by the outer block

        def other() -> None:
            try:
                with folder.lock(tmp_path, purpose="evaluate"):
                    pass
            except ValueError as error:
                errors.append(str(error))

        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(errors) == 1 and "locked by another thread of this process" in errors[0]
    assert not (tmp_path / folder.LOCK).exists()


def test_lock_creates_the_folder_and_removes_it_when_nothing_was_written(tmp_path: Path) -> None:
    with folder.lock(tmp_path / "a" / "b", purpose="train"):
        assert (tmp_path / "a" / "b" / folder.LOCK).is_file()
        folder.check_new_run(tmp_path / "a" / "b")  # the lock file does not make the folder "not empty"
    assert not (tmp_path / "a" / "b").exists()
    with folder.lock(tmp_path / "c", purpose="train"):
        (tmp_path / "c" / "config.yaml").write_text("")
    assert [p.name for p in (tmp_path / "c").iterdir()] == ["config.yaml"]


def test_a_stale_lock_file_of_a_dead_holder_is_simply_taken(tmp_path: Path) -> None:
    (tmp_path / folder.LOCK).write_text(json.dumps({"pid": 1, "host": "x", "command": "c", "purpose": "p"}))
    with folder.lock(tmp_path, purpose="train"):
        assert json.loads((tmp_path / folder.LOCK).read_text())["pid"] == os.getpid()


def _train(out: Path, *extra: str) -> subprocess.Popen[str]:
    options = [f"--set={o}" for o in [*TINY, "loss.ranking=exact", *extra]]
    return subprocess.Popen(
        [sys.executable, "-m", "selectseg", "train", "--out", str(out), *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )


def test_two_train_processes_into_one_folder_one_wins_the_other_exits_2(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _train(out, "seed=1", "optim.epochs=2000")  # long enough to still hold the folder on a fast machine
    deadline = time.monotonic() + 120
    while not (out / folder.LOCK).is_file() or not (out / folder.LOCK).read_text():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    time.sleep(1.0)  # the reproduction: the second one starts a second later, with another config
    second = _train(out, "seed=2", "optim.epochs=1")
    stdout, stderr = second.communicate(timeout=300)
    assert second.returncode == 2, stdout + stderr
    message = " ".join((stdout + stderr).split())
    assert "is locked by pid" in message and str(first.pid) in message, message
    assert first.poll() is None  # the holder was still training all along
    first.send_signal(signal.SIGKILL)
    first.communicate()
    saved = yaml.safe_load((out / folder.CONFIG).read_text())
    assert saved["seed"] == 1 and saved["optim"]["epochs"] == 2000  # the holder's config only, nothing of the second
    if (out / folder.METRICS).is_file():
        epochs = [line.split(",")[0] for line in (out / folder.METRICS).read_text().strip().splitlines()[1:]]
        assert epochs == [str(e) for e in range(1, len(epochs) + 1)]
    assert not (out / folder.MODEL).exists()  # the refused run wrote no weights


def test_train_killed_leaves_a_lock_that_the_resume_takes_again(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = _train(out, "optim.epochs=50")
    deadline = time.monotonic() + 120
    while not (out / folder.CONFIG).is_file():
        assert first.poll() is None and time.monotonic() < deadline, first.communicate()
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    assert (out / folder.LOCK).is_file()  # stale: its holder is dead, the OS released the flock
    with folder.lock(out, purpose="resume"):
        pass
