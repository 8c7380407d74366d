"""The manual stays true to the code.

Every ``landgan`` command in a shell code block of README.md, CONTRIBUTING.md or docs/
parses with the real parser (an existing verb, existing flags, valid choices; no
abbreviated flags); every benchmark script such a block runs exists and declares the
flags given to it; no picture or link sits inside a command block; every test a page
names exists in the file it names; every linked file,
picture and heading anchor exists; every picture under docs/ is shown or linked by a page
and is small; pages stay short; and the version agrees in the package, the CLI and the
changelog.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

import landgan
from landgan.cli import _build_parser, main

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(
    [REPO / "README.md", REPO / "CONTRIBUTING.md", REPO / "CHANGELOG.md", *DOCS.rglob("*.md")]
)
SHELL_LANGS = {"", "bash", "sh", "shell", "console"}
PICTURES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".svg"}
MAX_PICTURE_BYTES = 300 * 1024
MAX_LINES = {"README.md": 150}  # and docs/ pages:
MAX_DOC_LINES = 250

FENCE = re.compile(r"^\s*(```+|~~~+)\s*([\w+-]*)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
INLINE_CODE = re.compile(r"`[^`\n]*`")
ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
OPERATORS = {"&&", "||", ";", "|", "&", ";;"}


def rel(path: Path) -> str:
    return str(path.relative_to(REPO))


def split_blocks(text: str) -> tuple[list[tuple[str, list[str], int]], list[tuple[int, str]]]:
    """(code blocks as (language, lines, first line number), prose lines as (number, line))."""
    blocks, prose, current = [], [], None
    for i, line in enumerate(text.splitlines(), 1):
        m = FENCE.match(line)
        if current is None and m:
            current = (m.group(1), m.group(2).lower(), [], i + 1)
        elif current is not None and line.strip().startswith(current[0]):
            blocks.append(current[1:])
            current = None
        elif current is not None:
            current[2].append(line)
        else:
            prose.append((i, line))
    assert current is None, "a code block is never closed"
    return blocks, prose


def command_lines(lines: list[str], first: int):
    """(line number, command) of a shell block: every line, or only the ``$ `` lines when
    the block shows a session (commands and their output); backslash continuations joined."""
    session = any(line.startswith("$ ") for line in lines)
    joined, start = "", None
    for i, line in enumerate(lines, first):
        if session and not joined:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        start = i if not joined else start
        if line.rstrip().endswith("\\"):
            joined += line.rstrip()[:-1] + " "
            continue
        yield start, joined + line
        joined = ""


def segments(command: str) -> list[list[str]]:
    """The simple commands of a shell line, split at ``&&``, ``|``, ``;``, ``&``; leading
    variable assignments dropped."""
    lex = shlex.shlex(command, posix=True, punctuation_chars=True)
    lex.whitespace_split = True
    lex.commenters = "#"
    out, cur = [], []
    for tok in lex:
        if tok in OPERATORS:
            out.append(cur)
            cur = []
        else:
            cur.append(tok)
    out.append(cur)
    cleaned = []
    for seg in out:
        while seg and ENV.match(seg[0]):
            seg = seg[1:]
        if seg:
            cleaned.append(seg)
    return cleaned


def landgan_argv(seg: list[str]) -> list[str] | None:
    """The arguments after ``landgan`` (also ``python -m landgan`` and torchrun ``-m
    landgan``), or None for any other command."""
    if seg[0] == "landgan":
        return seg[1:]
    for i in range(len(seg) - 1):
        if seg[i] == "-m" and seg[i + 1] == "landgan":
            if seg[0] in ("python", "python3", "torchrun"):
                return seg[i + 2 :]
    return None


def shell_commands():
    """(page, line number, simple command) for every command in every shell code block."""
    for page in PAGES:
        blocks, _ = split_blocks(page.read_text(encoding="utf-8"))
        for lang, lines, first in blocks:
            if lang not in SHELL_LANGS:
                continue
            for number, line in command_lines(lines, first):
                for seg in segments(line):
                    yield page, number, seg


def strict_parser() -> argparse.ArgumentParser:
    """landgan's parser, with abbreviated flags refused (a page must spell a flag out)."""
    parser = _build_parser()
    stack = [parser]
    while stack:
        p = stack.pop()
        p.allow_abbrev = False
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                stack.extend(action.choices.values())
    return parser


def test_pages_have_commands():
    argvs = [landgan_argv(seg) for _, _, seg in shell_commands()]
    verbs = {a[0] for a in argvs if a}
    assert {"prepare", "label", "train", "generate", "evaluate", "export", "ui"} <= verbs


def test_every_landgan_command_parses():
    parser, bad = strict_parser(), []
    for page, number, seg in shell_commands():
        argv = landgan_argv(seg)
        if argv is None:
            continue
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(argv)
        except SystemExit as e:
            if e.code not in (0, None):
                last = (err.getvalue().strip().splitlines() or ["?"])[-1]
                bad.append(f"{rel(page)}:{number}: landgan {shlex.join(argv)}\n    {last}")
    assert not bad, "commands the parser refuses:\n" + "\n".join(bad)


def script_flags(script: Path) -> set[str]:
    """The ``--flags`` a script's argparse declares, read from its source (no import)."""
    return set(re.findall(r"add_argument\(\s*\"(--[\w-]+)\"", script.read_text(encoding="utf-8")))


def test_every_benchmark_script_run_exists_and_takes_its_flags():
    bad = []
    for page, number, seg in shell_commands():
        if seg[0] not in ("python", "python3") or len(seg) < 2 or not seg[1].endswith(".py"):
            continue
        script, where = REPO / seg[1], f"{rel(page)}:{number}: {seg[1]}"
        if not script.is_file():
            bad.append(f"{where} (no such script)")
            continue
        flags = script_flags(script) | {"--help"}
        bad += [
            f"{where} {t} (no such flag)"
            for t in seg[2:]
            if t.startswith("--") and t.split("=")[0] not in flags
        ]
    assert not bad, "benchmark commands that cannot run:\n" + "\n".join(bad)


def test_no_markdown_inside_shell_blocks():
    """A picture or link pasted into a command block is a broken command, not a picture."""
    bad = []
    for page in PAGES:
        blocks, _ = split_blocks(page.read_text(encoding="utf-8"))
        for lang, lines, first in blocks:
            if lang in SHELL_LANGS:
                bad += [
                    f"{rel(page)}:{i}: {line.strip()}"
                    for i, line in enumerate(lines, first)
                    if LINK.search(line)
                ]
    assert not bad, "Markdown in shell blocks:\n" + "\n".join(bad)


TEST_FILE = re.compile(r"\b(test_\w+\.py)(?:::(\w+))?")
TEST_NAME = re.compile(r"`(test_\w+)`")


def defined_tests() -> dict[str, set[str]]:
    """Test file name -> the functions and classes it defines."""
    return {
        f.name: {
            n.name
            for n in ast.walk(ast.parse(f.read_text(encoding="utf-8")))
            if isinstance(n, (ast.FunctionDef, ast.ClassDef))
        }
        for f in (REPO / "tests").glob("*.py")
    }


def test_every_test_a_page_names_exists():
    """A test moved or renamed leaves the reliability table pointing at nothing."""
    tests = defined_tests()
    everywhere = set().union(*tests.values())
    bad = []
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for file, name in TEST_FILE.findall(line):
                if file not in tests or (name and name not in tests[file]):
                    bad.append(f"{rel(page)}:{number}: {file}{'::' + name if name else ''}")
            bad += [
                f"{rel(page)}:{number}: {n}" for n in TEST_NAME.findall(line) if n not in everywhere
            ]
    assert not bad, "tests named in the manual that do not exist there:\n" + "\n".join(bad)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    _, prose = split_blocks(page.read_text(encoding="utf-8"))
    seen, out = {}, set()
    for _, line in prose:
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m.group(1))
            out.add(s if s not in seen else f"{s}-{seen[s]}")
            seen[s] = seen.get(s, 0) + 1
    return out


def links(page: Path):
    """(line number, target) of every Markdown link and picture outside code."""
    _, prose = split_blocks(page.read_text(encoding="utf-8"))
    for number, line in prose:
        for m in LINK.finditer(INLINE_CODE.sub("", line)):
            yield number, m.group(1)


def test_every_link_and_picture_exists():
    bad = []
    for page in PAGES:
        for number, target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            where = f"{rel(page)}:{number}: {target}"
            if not dest.exists():
                bad.append(f"{where} (no such file)")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{where} (no heading with that anchor)")
    assert not bad, "broken links:\n" + "\n".join(bad)


def test_every_picture_is_used_and_small():
    used = set()
    for page in PAGES:
        for _, target in links(page):
            path = target.partition("#")[0]
            if path and not re.match(r"^[a-z][a-z0-9+.-]*:", path):
                used.add((page.parent / path).resolve())
    pictures = [p for p in DOCS.rglob("*") if p.suffix.lower() in PICTURES]
    unused = [rel(p) for p in pictures if p.resolve() not in used]
    large = [
        f"{rel(p)} ({p.stat().st_size // 1024} KB)"
        for p in pictures
        if p.stat().st_size > MAX_PICTURE_BYTES
    ]
    assert not unused, (
        "pictures no page shows or links (delete them; git keeps them): "
        + ", ".join(sorted(unused))
    )
    assert not large, f"pictures over {MAX_PICTURE_BYTES // 1024} KB: " + ", ".join(large)


@pytest.mark.parametrize("page", PAGES, ids=rel)
def test_pages_stay_short(page):
    limit = MAX_LINES.get(rel(page), MAX_DOC_LINES if DOCS in page.parents else None)
    if limit is not None:
        lines = len(page.read_text(encoding="utf-8").splitlines())
        assert lines <= limit, f"{rel(page)} has {lines} lines; at most {limit}"


def test_version_agrees_everywhere(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out.strip() == f"landgan {landgan.__version__}"
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    newest = re.search(r"^## (\d+\.\d+\.\d+)", changelog, re.M)
    assert newest and newest.group(1) == landgan.__version__, (
        "CHANGELOG.md's newest version is not landgan.__version__"
    )
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    static = re.search(r'^version\s*=\s*"([^"]+)"', pyproject, re.M)
    if static:  # a static version must move with the package's
        assert static.group(1) == landgan.__version__, (
            "pyproject.toml's version is not landgan.__version__"
        )
