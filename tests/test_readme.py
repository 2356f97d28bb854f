"""The README's examples run as written."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_first_python_example_runs_as_written() -> None:
    block = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)[0]
    namespace: dict[str, object] = {}
    exec(compile(block, str(README), "exec"), namespace)
    assert 0 <= float(namespace["curve"].aurc) <= 1  # type: ignore[attr-defined]


def test_every_cli_example_names_existing_commands_and_options() -> None:
    from typer.testing import CliRunner

    from selectseg.cli import app

    lines = [line for line in README.read_text().splitlines() if line.startswith("selectseg ")]
    assert len(lines) >= 10
    runner = CliRunner()
    for line in lines:
        command = line.split()[1]
        help_text = runner.invoke(app, [command, "--help"], env={"COLUMNS": "250"}).output
        assert "Usage" in help_text, line
        for option in re.findall(r"(?<=\s)(--[a-z][a-z-]*)", line.split("#")[0]):
            assert option in help_text, f"{option} is not an option of `selectseg {command}` ({line})"
