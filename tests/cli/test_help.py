"""Every subcommand documents itself: description, every option, exit codes."""

from __future__ import annotations

import argparse

import pytest

from eventwire._cli import _parser, main
from tests.cli.conftest import run_cli

COMMANDS = [["demo"], ["broker"], ["produce"], ["bench"], ["schema"], ["schema", "export"]]


def _subparser(path: list[str]) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = _parser()
    for name in path:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    return parser


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_describes_every_option_and_the_exit_codes(
    command: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: eventwire {' '.join(command)}")
    assert "exit codes" in text
    assert "0 " in text.split("exit codes", 1)[1]
    parser = _subparser(command)
    assert parser.description
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                assert choice.help, f"{choice.dest} has no help"
                assert choice.dest in text
            continue
        assert action.help, f"{action.dest} has no help"
        for flag in action.option_strings:
            assert flag in text


def test_top_level_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    for name in ("demo", "broker", "produce", "bench", "schema"):
        assert f"    {name} " in text
    assert "exit codes" in text


def test_python_dash_m_runs_the_same_command() -> None:
    result = run_cli("produce", "--help")
    assert result.returncode == 0
    assert "--rejects" in result.stdout
    assert result.stderr == ""


def test_produce_help_documents_its_partial_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["produce", "--help"])
    codes = capsys.readouterr().out.split("exit codes:", 1)[1]
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "130 "):
        assert f"\n  {code}" in codes
