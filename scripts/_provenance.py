"""What code a benchmark ran on: one helper shared by the scripts in this folder."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def git(*cmd: str) -> str:
    """Output of a read-only git command in the repository ('' when git is unavailable)."""
    try:
        out = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(REPO_ROOT), *cmd],
            capture_output=True,
            text=True,
            check=False,
        )
    except OSError:
        return ""
    return out.stdout.strip()


def code_version(*paths: str) -> str:
    """Short commit of the checkout plus the files under ``paths`` that differ from it.

    Modified and untracked files both count (``git status --porcelain``).
    """
    head = git("rev-parse", "--short", "HEAD")
    if not head:
        return "unknown (not a git checkout)"
    status = git("status", "--porcelain", "--", *paths).splitlines()
    changed = [line.split(maxsplit=1)[-1] for line in status]
    dirty = f", uncommitted/untracked: {', '.join(changed)}" if changed else ""
    return f"{head}{dirty}"


def code_at(commit: str, folder: Path) -> Path:
    """A copy of ``roadnet`` and ``cache`` at ``commit`` in ``folder`` (``git archive``; the
    repository's work trees are not touched), reused when present."""
    if not (folder / "roadnet" / "__init__.py").exists():
        folder.mkdir(parents=True, exist_ok=True)
        tar = subprocess.run(
            ["git", "-C", str(REPO_ROOT), "archive", commit, "roadnet", "cache"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=tar, check=True)
    return folder
