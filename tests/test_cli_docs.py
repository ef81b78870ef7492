"""The command lines the docs show are the command lines encdec runs: docs/cli.md's outputs are compared with the
real output of the same commands, and every ``encdec ...`` line in a shell block of the docs parses.

A shell block followed by a ``{.text .no-copy}`` block is a command and its output. Those in docs/cli.md that run
offline without data (``list``, ``info``, ``--help``, errors about a missing model or folder) are run here; a
``...`` line in the output stands for lines left out, and line breaks may differ (the docs wrap long lines).
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

import encdec
from encdec.cli import build_parser, main
from encdec.training import recipes

ROOT = Path(__file__).resolve().parent.parent
CLI_PAGE = ROOT / "docs" / "cli.md"
FENCE = re.compile(r"^```(\{[^}\n]*\}|[\w+-]*)[^\n]*\n(.*?)^```[ \t]*\n", re.M | re.S)
#: Verbs whose output docs/cli.md may show: they need no data, no weights and no network.
OFFLINE = {"list", "info", "recipes", "--help", "train"}  # train: only its errors before any data is read


def _pages():
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _blocks(text: str):
    """``(info, body, end)`` of every fenced block, in order (``end``: the offset after its closing fence)."""
    return [(m.group(1), m.group(2), m.start(), m.end()) for m in FENCE.finditer(text)]


def _command_lines(body: str):
    """The commands of a shell block: continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", body)
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def _shown_outputs():
    """``(command, output)`` pairs of docs/cli.md: a bash block with one command, then a no-copy text block."""
    text = CLI_PAGE.read_text(encoding="utf-8")
    blocks = _blocks(text)
    pairs = []
    for (info, body, _, end), (next_info, next_body, next_start, _) in zip(blocks, blocks[1:]):
        if info == "bash" and ".no-copy" in next_info and not text[end:next_start].strip():
            commands = _command_lines(body)
            assert len(commands) == 1, f"an output block follows a block of {len(commands)} commands: {body}"
            pairs.append((commands[0], next_body))
    return pairs


def _normal(text: str) -> str:
    """Whitespace runs as one space; durations (``1.2 s``), which vary from run to run, as ``N s``."""
    text = re.sub(r"\b\d+(\.\d+)? s\b", "N s", text)
    return re.sub(r"\s+", " ", text).strip()


def _matches(shown: str, real: str) -> bool:
    """Whether ``shown`` is ``real`` with the parts its ``...`` lines stand for left out."""
    parts = re.split(r"^\.\.\.[ \t]*$", shown, flags=re.M)
    pattern = ".*?".join(re.escape(_normal(part)) for part in parts)
    return re.fullmatch(pattern, _normal(real), flags=re.S) is not None


def test_the_cli_page_shows_outputs_of_offline_commands():
    shown = _shown_outputs()
    verbs = {shlex.split(command)[1] for command, _ in shown}
    assert {"list", "info", "--help", "train"} <= verbs, verbs
    assert verbs <= OFFLINE, f"outputs shown for commands the test cannot run offline: {verbs - OFFLINE}"


@pytest.mark.parametrize("command, output", _shown_outputs(), ids=[command for command, _ in _shown_outputs()])
def test_cli_page_output_is_what_the_command_prints(command, output, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", "/home/me")  # the page's ~ is /home/me
    monkeypatch.setenv("COLUMNS", "120")  # argparse wraps its help to the terminal
    monkeypatch.chdir(tmp_path)  # a command that would write (train's default --out) writes nowhere that matters
    try:
        main(shlex.split(command)[1:])
    except SystemExit:  # --help
        pass
    captured = capsys.readouterr()
    real = captured.out + captured.err
    assert _matches(output, real), f"docs/cli.md shows for `{command}`:\n{output}\nbut it prints:\n{real}"
    assert not any(tmp_path.iterdir()), "a documented command wrote files"


def test_shown_output_comparison_catches_a_difference():
    real = "a: 1,234 parameters\nb: took 1.5 s\nc\nd\n"
    assert _matches("a: 1,234 parameters\nb: took 9 s\n...\n", real)
    assert _matches("a: 1,234\nparameters\n...\nd\n", real)
    assert not _matches("a: 1,235 parameters\n...\n", real)  # a count that changed
    assert not _matches("a: 1,234 parameters\nb: took 1.5 s\n", real)  # lines left out without a ...
    assert not _matches("...\nc\nb: took 1.5 s\n", real)  # out of order


def _documented_commands():
    found = []
    for page in _pages():
        for info, body, _, _ in _blocks(page.read_text(encoding="utf-8")):
            if info in ("bash", "sh", "shell", "console"):
                page_name = page.relative_to(ROOT).as_posix()
                found += [(page_name, c) for c in _command_lines(body) if c.startswith("encdec")]
    return found


def test_docs_shell_blocks_hold_commands_only():
    """Their copy button copies commands: no ``$`` prompt, no output (outputs are separate no-copy blocks)."""
    for page in _pages():
        for info, body, _, _ in _blocks(page.read_text(encoding="utf-8")):
            if info in ("bash", "sh", "shell", "console"):
                prompts = [line for line in body.splitlines() if re.match(r"\s*[$>] ", line)]
                assert not prompts, (page.name, prompts)
            if info == "text" or info.startswith("{.text"):
                assert ".no-copy" in info, f"{page.name}: a text block (output, a folder tree) gets no copy button"


def test_every_documented_encdec_command_parses_and_names_real_models_and_recipes():
    commands = _documented_commands()
    assert len(commands) >= 40
    parser = build_parser()
    models, recipe_names = set(encdec.list_models()), set(recipes.names())
    for page, command in commands:
        words = shlex.split(command, comments=True)[1:]
        try:
            args = parser.parse_args(words)
        except SystemExit as exit_:
            if exit_.code == 0 and ("--help" in words or "--version" in words):
                continue
            pytest.fail(f"{page}: `{command}` does not parse (see `encdec {words[0]} --help`)")
        named = getattr(args, "model", None)
        if named is not None and command != "encdec info unett":  # the page's example of a misspelt name
            assert named in models, f"{page}: `{command}` names no model of encdec list"
        recipe = getattr(args, "recipe", None)
        if recipe is not None:
            assert recipe in recipe_names, f"{page}: `{command}` names no recipe of encdec recipes"
