"""The versions of an archive: git commits of one file, or the revisions of a folder."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path


@dataclass(frozen=True)
class Revision:
    """One version of an archive file: where its bytes are and when git says it was made."""

    key: str  # a commit sha, or the revision folder's / file's name
    committed_at: datetime | None  # commit time (git); None for a plain folder
    repo: Path | None = None  # a git clone: read with `git show key:rel`
    rel: str = ""  # the file's path in the clone
    file: Path | None = None  # a folder revision: the file itself

    def read_bytes(self) -> bytes:
        """The file's content at this version."""
        if self.file is not None:
            return self.file.read_bytes()
        assert self.repo is not None
        return subprocess.run(
            ["git", "-C", str(self.repo), "show", f"{self.key}:{self.rel}"],
            check=True,
            capture_output=True,
        ).stdout


def is_git(path: Path) -> bool:
    """Whether `path` is a git clone (a work tree or a bare repository)."""
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def git_revisions(repo: Path, rel: str) -> list[Revision]:
    """Every commit that changed `rel`, oldest first, with its commit time."""
    out = subprocess.run(
        ["git", "-C", str(repo), "log", "--reverse", "--format=%H %cI", "--", rel],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    revs = []
    for line in out.splitlines():
        sha, when = line.split(" ", 1)
        at = datetime.fromisoformat(when).astimezone(UTC)
        revs.append(Revision(sha, at, repo=repo, rel=rel))
    return revs


def folder_revisions(path: Path, name: str) -> list[Revision]:
    """`path/<rev>/<name>` (sorted by rev) or, for a single file, that file alone."""
    if path.is_file():
        return [Revision(path.name, None, file=path)]
    found = sorted(p for p in path.glob(f"*/{name}") if p.is_file())
    if (path / name).is_file():
        found.insert(0, path / name)
    return [Revision(p.parent.name if p.parent != path else p.name, None, file=p) for p in found]


def revisions(path: Path, rel: str) -> list[Revision]:
    """A git clone's history of `rel`, else the folder's revisions of its file name."""
    if path.is_dir() and is_git(path):
        return git_revisions(path, rel)
    return folder_revisions(path, Path(rel).name)
