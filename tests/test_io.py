from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from selectseg import _io
from selectseg._io import atomic_write_text, remove_stale, staged_output


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_atomic_write_removes_stale_temp_files_of_dead_processes(tmp_path: Path) -> None:
    dead, alive = dead_pid(), os.getppid()
    (tmp_path / f".a.txt.{dead}.0.tmp").write_text("killed mid-write")
    (tmp_path / f".a.txt.{alive}.3.tmp").write_text("another live writer")
    (tmp_path / f".b.txt.{dead}.0.tmp").write_text("another name: left for its own next write")
    atomic_write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["a.txt", f".a.txt.{alive}.3.tmp", f".b.txt.{dead}.0.tmp"]
    )
    assert remove_stale(tmp_path) == [tmp_path / f".b.txt.{dead}.0.tmp"]


def test_atomic_write_leaves_a_recognisable_temp_file_when_killed(tmp_path: Path) -> None:
    code = (
        "import os, signal\nfrom selectseg._io import atomic_write\n"
        f"with atomic_write({str(tmp_path / 'a.txt')!r}) as f:\n"
        "    f.write(b'half'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=False, env={**os.environ})
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".a.txt.") and left[0].endswith(".tmp")
    atomic_write_text(tmp_path / "a.txt", "whole")
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_atomic_write_mode_is_what_open_gives_and_the_umask_is_never_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_umask = os.umask
    previous = real_umask(0o022)
    try:
        calls: list[int] = []
        monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0o022)
        plain = tmp_path / "plain.txt"
        with open(plain, "w") as handle:
            handle.write("x")
        errors: list[BaseException] = []

        def atomic() -> None:
            try:
                for i in range(200):
                    atomic_write_text(tmp_path / f"a{i % 7}.txt", str(i))
            except BaseException as error:  # pragma: no cover - reported below
                errors.append(error)

        def other() -> None:  # another thread creating files meanwhile
            for i in range(400):
                with open(tmp_path / f"o{i % 11}.txt", "w") as handle:
                    handle.write(str(i))

        threads = [threading.Thread(target=atomic), threading.Thread(target=other)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        real_umask(previous)
    assert not errors and calls == []
    expected = stat.S_IMODE(plain.stat().st_mode)
    assert expected == 0o644
    for path in tmp_path.iterdir():
        mode = stat.S_IMODE(path.stat().st_mode)
        assert not mode & stat.S_IWOTH, path
        if path.name.startswith("a"):
            assert mode == expected, path


def test_staged_output_publishes_the_whole_set_mark_last(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with staged_output(out, "mark.json") as stage:
        (stage / "one.csv").write_text("1")
        (stage / "sub").mkdir()
        (stage / "sub" / "two.csv").write_text("2")
        (stage / "mark.json").write_text("{}")
        assert not out.joinpath("mark.json").exists()  # nothing visible before the end
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "mark.json",
        "one.csv",
        "sub/two.csv",
    ]
    (out / "user.txt").write_text("not ours")
    with staged_output(out, "mark.json", replaces=["one.csv", "sub/two.csv"]) as stage:
        (stage / "three.csv").write_text("3")
        (stage / "mark.json").write_text('{"v": 2}')
    assert sorted(p.name for p in out.iterdir()) == ["mark.json", "sub", "three.csv", "user.txt"]
    assert not list((out / "sub").iterdir())


def test_staged_output_error_while_writing_keeps_the_old_output(tmp_path: Path) -> None:
    with staged_output(tmp_path, "mark.json") as stage:
        (stage / "a.csv").write_text("old")
        (stage / "mark.json").write_text("old")
    with pytest.raises(RuntimeError, match="killed"), staged_output(tmp_path, "mark.json", replaces=["a.csv"]) as stage:
        (stage / "a.csv").write_text("new")
        raise RuntimeError("killed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "mark.json"]
    assert (tmp_path / "a.csv").read_text() == "old" == (tmp_path / "mark.json").read_text()


def test_staged_output_without_its_mark_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"mark file 'mark.json'"), staged_output(tmp_path, "mark.json") as stage:
        (stage / "a.csv").write_text("new")
    assert list(tmp_path.iterdir()) == []


def test_staged_output_removes_staging_folders_of_dead_processes(tmp_path: Path) -> None:
    stale = tmp_path / f".mark.json.{dead_pid()}.0.partial"
    stale.mkdir()
    (stale / "a.csv").write_text("half")
    with staged_output(tmp_path, "mark.json") as stage:
        (stage / "mark.json").write_text("{}")
    assert [p.name for p in tmp_path.iterdir()] == ["mark.json"]


@pytest.mark.parametrize("moves", [-1, 0, 1, 2])
def test_staged_output_killed_while_publishing_leaves_old_or_no_mark(tmp_path: Path, moves: int) -> None:
    """A SIGKILL while staging (-1) leaves the old set whole; after ``moves`` renames of the publish step (the last
    one the mark's), no mark: never a mix."""
    out = tmp_path / "out"
    script = (
        "import os, signal, sys\nfrom selectseg import _io\n"
        "def write(version, kill_after):\n"
        "    count = [0]\n    real = os.replace\n"
        "    def replace(a, b):\n"
        "        if kill_after is not None and str(b).startswith(sys.argv[1]) and '.tmp' not in str(a)[-4:]:\n"
        "            if count[0] == kill_after: os.kill(os.getpid(), signal.SIGKILL)\n"
        "            count[0] += 1\n"
        "        real(a, b)\n"
        "    _io.os.replace = replace\n"
        "    with _io.staged_output(sys.argv[1], 'mark.json', replaces=['a.csv', 'b.csv']) as stage:\n"
        "        for name in ('a.csv', 'b.csv', 'mark.json'):\n"
        "            _io.atomic_write_text(stage / name, version)\n"
        "            if kill_after == -1: os.kill(os.getpid(), signal.SIGKILL)\n"
        "    _io.os.replace = real\n"
        "write('old', None)\nwrite('new', int(sys.argv[2]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(out), str(moves)], check=False)
    assert result.returncode == -9
    if moves == -1:
        files = {p.name: p.read_text() for p in out.iterdir() if p.is_file()}
        assert files == {"a.csv": "old", "b.csv": "old", "mark.json": "old"}
    else:
        assert not (out / "mark.json").exists()  # readers see no output
    with staged_output(out, "mark.json", replaces=["a.csv", "b.csv"]) as stage:
        (stage / "mark.json").write_text("again")
    assert sorted(p.name for p in out.iterdir()) == ["mark.json"]  # the killed staging folder was removed


def test_temp_names_are_recognised() -> None:
    assert _io._TEMP.match(".evaluation.json.123.4.partial")["name"] == "evaluation.json"  # type: ignore[index]
    assert _io._TEMP.match(".a.b.c.9.0.tmp")["pid"] == "9"  # type: ignore[index]
    assert _io._TEMP.match(".a.tmp") is None


def test_data_writers_leave_temp_files_the_next_write_removes(tmp_path: Path) -> None:
    """save_like's NIfTI/PNG writer keeps the file ending on its temp name (for nibabel) and uses the recognisable
    pattern, so a killed writer's leftover is removed by the next write of that name."""
    import numpy as np

    from selectseg.data.io import atomic_write

    target = tmp_path / "case_seg.nii.gz"
    stale = tmp_path / ".case_seg.999999999.0.tmp.nii.gz"  # a dead writer's leftover (no such pid)
    stale.write_bytes(b"partial")
    seen: list[str] = []

    def write(tmp: Path) -> None:
        seen.append(tmp.name)
        tmp.write_bytes(np.zeros(4, np.uint8).tobytes())

    atomic_write(target, write)
    assert target.is_file() and not stale.exists()
    assert seen[0].startswith(".case_seg.") and seen[0].endswith(".tmp.nii.gz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case_seg.nii.gz"]
