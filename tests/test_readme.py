"""The README's examples run as written: every ```python and ```bash block, on the shared data.

A block is skipped only when the line before its fence is ``<!-- doctest: skip (why) -->``
(install commands, a server that keeps running). Blocks run in a fresh folder next to a link to
``../shared`` (as the README assumes: the repository beside ``shared/``), with their own cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, SHARED

README = ROOT / "README.md"
_BLOCK = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>python|bash)\n(?P<code>.*?)\n```", re.S)


def _blocks() -> list[tuple[str, str, int]]:
    text = README.read_text(encoding="utf-8")
    out = []
    for m in _BLOCK.finditer(text):
        if "doctest: skip" in m.group("before"):
            continue
        line = text[: m.start("code")].count("\n") + 1
        out.append((m.group("lang"), m.group("code"), line))
    return out


def test_readme_has_examples_and_skips_only_marked_blocks() -> None:
    text = README.read_text(encoding="utf-8")
    fences = len(re.findall(r"\n```(?:python|bash)\n", text))
    skipped = text.count("<!-- doctest: skip")
    assert fences == len(_blocks()) + skipped
    assert any(lang == "python" for lang, _, _ in _blocks())
    assert any(lang == "bash" for lang, _, _ in _blocks())


@pytest.mark.slow
@pytest.mark.parametrize(("lang", "code", "line"), _blocks(), ids=lambda v: str(v)[:20])
def test_readme_block_runs(lang: str, code: str, line: int, tmp_path: Path) -> None:
    if not SHARED.is_dir():
        pytest.skip(f"shared data not available: {SHARED}")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "shared").symlink_to(SHARED.parent, target_is_directory=True)
    env = dict(
        os.environ,
        ROADNET_CACHE_DIR=str(tmp_path / "cache"),
        PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    )
    cmd = (
        [sys.executable, "-c", code]
        if lang == "python"
        else ["bash", "-euo", "pipefail", "-c", code]
    )
    res = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, f"README line {line} ({lang}) failed:\n{res.stdout}\n{res.stderr}"
