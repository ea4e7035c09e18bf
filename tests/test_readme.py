"""The README runs as printed: every console block and Python snippet in README.md is run
here, in order, in a sandbox that sees the repository's files, and what each prints and
returns must be what the README shows.

Console blocks: a `$ netspec ...` command runs in a shell and its output (stdout and stderr as
a terminal interleaves them) must equal the lines under it; a line `...` stands for any
number of lines. `$ pip install ...` commands are what `.ci/run` runs on a fresh virtual
environment, so they must appear there verbatim; `$ python3 -m pytest ...` commands must
select tests (run here with `--collect-only`). Python blocks run in one namespace, in order,
as a reader would paste them. A YAML block whose first line names a file must be that file.

An HTML comment just before a block (invisible on the page) can say more about it:
`<!-- readme-test: exit=1 loose slow needs=dot -->`: the exit status its commands end with
(default 0), numbers may differ (timings, throughput), it takes seconds (`slow` tier), or it
needs a system program.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI = ROOT / ".ci" / "run"
SHARED = ("specs", "examples", "tests", "docs", "benchmarks", "constraints.txt", "pyproject.toml")
"""What the sandbox links in from the repository (outputs land in the sandbox itself)."""

_FENCE = re.compile(r"^```(\w*)\s*$")
_NOTE = re.compile(r"^<!-- readme-test: (.*) -->$")
_NUMBER = re.compile(r"\d[\d,.]*(e[+-]?\d+)?")


@dataclass
class Block:
    line: int
    lang: str
    text: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.lang}@{self.line}"

    def marks(self) -> list[pytest.MarkDecorator]:
        marks = [pytest.mark.slow] if "slow" in self.options else []
        if "needs" in self.options:
            marks.append(pytest.mark.needs(self.options["needs"]))
        return marks


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text, each with the options of the comment before it."""
    found: list[Block] = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        fence = _FENCE.match(lines[number])
        if fence and fence.group(1):
            end = lines.index("```", number + 1)
            before = next((x for x in reversed(lines[:number]) if x.strip()), "")
            note = _NOTE.match(before)
            options = dict(o.partition("=")[::2] for o in note.group(1).split()) if note else {}
            found.append(Block(number + 1, fence.group(1), "\n".join(lines[number + 1:end]), options))
            number = end
        number += 1
    return found


BLOCKS = blocks(README.read_text(encoding="utf-8"))


def cases(lang: str) -> list:
    return [pytest.param(b, id=b.id, marks=b.marks()) for b in BLOCKS if b.lang == lang]


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """Each `$ command` of a console block with the output lines shown under it."""
    out: list[tuple[str, list[str]]] = []
    for line in block.text.splitlines():
        if line.startswith("$ "):
            out.append((line[2:], []))
        else:
            out[-1][1].append(line)
    return out


def without_comment(command: str) -> str:
    """The command a shell runs: a trailing `  # ...` comment removed."""
    return re.sub(r"\s+#\s.*$", "", command)


def loose(line: str) -> str:
    """A line with its numbers and runs of spaces blurred (for figures that vary)."""
    return re.sub(r"\s+", " ", _NUMBER.sub("#", line)).strip()


def matches(shown: list[str], printed: list[str], blur: bool) -> bool:
    """Whether `printed` is what `shown` shows: line by line, `...` for any lines."""
    norm = loose if blur else str.rstrip
    shown = [s if s == "..." else norm(s) for s in shown]
    printed = [norm(p) for p in printed]

    def at(i: int, j: int) -> bool:
        if i == len(shown):
            return j == len(printed)
        if shown[i] == "...":
            return any(at(i + 1, k) for k in range(j, len(printed) + 1))
        return j < len(printed) and shown[i] == printed[j] and at(i + 1, j + 1)

    return at(0, 0)


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder where the README's relative paths resolve and its outputs land."""
    folder = tmp_path_factory.mktemp("readme")
    for name in SHARED:
        (folder / name).symlink_to(ROOT / name)
    return folder


def shell(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(command, shell=True, cwd=cwd, env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)


@pytest.mark.parametrize("block", cases("console"))
def test_console_block_runs_as_printed(block: Block, sandbox: Path) -> None:
    ci = CI.read_text(encoding="utf-8").splitlines()
    for command, shown in commands(block):
        runnable = without_comment(command)
        if runnable.startswith("pip install"):
            assert runnable in ci, f"README.md:{block.line}: `{runnable}` is not what .ci/run runs"
            continue
        if runnable.startswith("python3 -m pytest"):
            runnable += " --collect-only -q -p no:cacheprovider"
        done = shell(runnable, sandbox)
        printed = done.stdout.splitlines()
        expected = int(block.options.get("exit", 0))
        where = f"README.md:{block.line}: `{command}`"
        assert done.returncode == expected, f"{where} exited {done.returncode}:\n{done.stdout}"
        if shown:
            assert matches(shown, printed, "loose" in block.options), (
                f"{where} printed:\n{done.stdout}\nthe README shows:\n" + "\n".join(shown))


@pytest.fixture(scope="module")
def namespace() -> dict[str, object]:
    """One namespace for all Python blocks, as a reader pasting them in order would have."""
    return {"__name__": "readme"}


@pytest.mark.parametrize("block", cases("python"))
def test_python_block_runs(block: Block, sandbox: Path, namespace: dict[str, object],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(sandbox)
    monkeypatch.syspath_prepend(str(sandbox))
    code = compile("\n" * (block.line) + block.text, str(README), "exec")
    exec(code, namespace)


@pytest.mark.parametrize("block", cases("yaml"))
def test_yaml_block_that_names_a_file_is_that_file(block: Block) -> None:
    first, _, body = block.text.partition("\n")
    named = re.fullmatch(r"# (\S+\.yaml)", first)
    if named is None:
        import netspec  # a fragment: it must at least be YAML netspec reads

        netspec.spec.source.read_source(f"README.md:{block.line}", block.text)
        return
    text = (ROOT / named.group(1)).read_text(encoding="utf-8")
    assert body.strip() in text, f"README.md:{block.line} differs from {named.group(1)}"


def test_every_pip_command_of_ci_is_in_the_readme() -> None:
    """.ci/run installs nothing the README does not tell a user to install."""
    shown = {without_comment(c) for b in BLOCKS if b.lang == "console" for c, _ in commands(b)}
    for line in CI.read_text(encoding="utf-8").splitlines():
        if line.startswith("pip install"):
            assert line in shown, f".ci/run runs `{line}`, which the README does not show"

