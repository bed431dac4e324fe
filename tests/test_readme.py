"""The README's examples run, and its set-up commands are the ones CI uses."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks_after(marker: str) -> list[str]:
    return re.findall(rf"<!-- {marker} -->\n```\w*\n(.*?)```", README, flags=re.S)


def test_marked_python_examples_run(capsys):
    blocks = blocks_after("runs")
    assert blocks, "the README has no runnable examples"
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, "README.md", "exec"), namespace)
    printed = capsys.readouterr().out
    # The first example promises XOR learned and a tiny gradcheck error.
    lines = printed.splitlines()
    assert lines[:4] == ["[[0.02]", " [0.98]", " [0.98]", " [0.02]]"], printed
    assert float(lines[4]) < 1e-6


def test_setup_commands_are_present_and_ci_reads_the_test_command():
    (main,) = blocks_after("main-command")
    (tests,) = blocks_after("test-command")
    assert "pip install" in main and "pytest" in tests
    assert "test-command" in (ROOT / ".ci" / "run").read_text()
