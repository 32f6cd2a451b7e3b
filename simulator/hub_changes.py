"""The changes a day's step makes to the Hub's repos, each at an instant, each undoable.

`hub_gen.step_day` applies a day's changes at once and, given a `DayLog`, records them. A
world advanced by whole days keeps them applied; a live world (`simulator.world`) undoes them
right after the step and applies each one again when its clock reaches the change's instant,
so creations, deletions, renames, commits and discussions happen one at a time through the
day while the counters in `COUNTERS` move by the elapsed share of the day's increment. Every
instant is the one the step already draws (a commit's date, a repo's `createdAt`) or, for a
rename or a deletion, a hash of (seed, kind, row, day): a function of the seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from simulator.hub_world import Moved, RepoTable
from simulator.rng import h64

DAY = 86_400
# the columns a day's step moves by an increment a live world spreads over the day
COUNTERS = ("downloads", "downloads_all", "likes", "trending")
# salts of the hashed instants of renames and deletions
_SALT_RENAME = 9101
_SALT_DELETE = 9102


@dataclass(frozen=True)
class Commit:
    """`count` new commits on `row`, the newest dated `at` (its new `lastModified`)."""

    at: int
    row: int
    first: int  # index of the first new commit (the commit count before)
    count: int
    prev_modified: int

    def apply(self, t: RepoTable) -> None:
        t.commit_log.setdefault(self.row, []).append((self.first, self.count, self.at))
        t.cols["n_commits"][self.row] = self.first + self.count
        t.cols["modified"][self.row] = self.at
        t.version += 1

    def undo(self, t: RepoTable) -> None:
        log = t.commit_log[self.row]
        log.pop()
        if not log:
            del t.commit_log[self.row]
        t.cols["n_commits"][self.row] = self.first
        t.cols["modified"][self.row] = self.prev_modified
        t.version += 1


@dataclass(frozen=True)
class NewDiscussion:
    """A discussion opened on `row` at `at` (the next number)."""

    at: int
    row: int

    def apply(self, t: RepoTable) -> None:
        t.cols["n_disc"][self.row] += 1
        t.disc_log.setdefault(self.row, []).append(self.at)
        t.version += 1

    def undo(self, t: RepoTable) -> None:
        t.cols["n_disc"][self.row] -= 1
        log = t.disc_log[self.row]
        log.pop()
        if not log:
            del t.disc_log[self.row]
        t.version += 1


@dataclass(frozen=True)
class Closed:
    """Discussion `num` of `row` closed (a PR merged) at `at`."""

    at: int
    row: int
    num: int

    def apply(self, t: RepoTable) -> None:
        t.disc_closed.setdefault(self.row, {})[self.num] = self.at
        t.version += 1

    def undo(self, t: RepoTable) -> None:
        closed = t.disc_closed[self.row]
        del closed[self.num]
        if not closed:
            del t.disc_closed[self.row]
        t.version += 1


@dataclass(frozen=True)
class Renamed:
    """`row` moves from `old` to `new` (owner `new_author`); the old name redirects."""

    at: int
    row: int
    old: str
    new: str
    old_author: int
    new_author: int
    day: int
    prev_moved: Moved | None = None  # what `old` redirected to before (restored on undo)

    def apply(self, t: RepoTable) -> None:
        # the row's current name, in case a change from outside the day's step (a churn
        # fault) renamed it since the step drew this one
        cur = t.names[self.row]
        if t.by_name.get(cur) == self.row:
            del t.by_name[cur]
        t.moved[cur] = Moved(self.row, self.day)
        t.names[self.row] = self.new
        if t.cols["alive"][self.row]:  # a repo deleted earlier in the day keeps no name
            # setdefault: a name a churn fault gave another repo meanwhile stays with it
            t.by_name.setdefault(self.new, self.row)
        t.cols["author"][self.row] = self.new_author
        t.version += 1

    def undo(self, t: RepoTable) -> None:
        t.by_name.pop(self.new, None)
        if self.prev_moved is None:
            t.moved.pop(self.old, None)
        else:
            t.moved[self.old] = self.prev_moved
        t.names[self.row] = self.old
        if t.cols["alive"][self.row]:
            t.by_name[self.old] = self.row
        t.cols["author"][self.row] = self.old_author
        t.version += 1


@dataclass(frozen=True)
class Deleted:
    """`row` deleted at `at`; `base` is the row whose descendant count it lowered (-1 none)."""

    at: int
    row: int
    base: int = -1

    def apply(self, t: RepoTable) -> None:
        delete_row(t, self.row)

    def undo(self, t: RepoTable) -> None:
        t.cols["alive"][self.row] = True
        t.by_name[t.names[self.row]] = self.row
        if self.base >= 0:
            t.children[self.base] = t.children.get(self.base, 0) + 1
        t.version += 1


@dataclass(frozen=True)
class Created:
    """`row` created at `at` (its `createdAt`); `base` is its base model's row (-1 none)."""

    at: int
    row: int
    base: int = -1

    def apply(self, t: RepoTable) -> None:
        t.cols["alive"][self.row] = True
        t.by_name.setdefault(t.names[self.row], self.row)  # (see Renamed.apply)
        if self.base >= 0:
            t.children[self.base] = t.children.get(self.base, 0) + 1
        t.version += 1

    def undo(self, t: RepoTable) -> None:
        t.cols["alive"][self.row] = False
        t.by_name.pop(t.names[self.row], None)
        if self.base >= 0:
            t.children[self.base] -= 1
        t.version += 1


Change = Commit | NewDiscussion | Closed | Renamed | Deleted | Created


def delete_row(t: RepoTable, row: int) -> int:
    """Delete `row` (no-op if gone); returns the base whose descendant count fell, or -1."""
    if not t.cols["alive"][row]:
        return -1
    t.cols["alive"][row] = False
    t.by_name.pop(t.names[row], None)
    t.version += 1
    if t.kind == "model":
        b = int(t.cols["base"][row])
        if b >= 0 and b in t.children:
            t.children[b] -= 1
            return b
    return -1


@dataclass
class DayLog:
    """The changes of one kind's day step, in the order the step made them."""

    seed: int
    code: int  # the table's kind code (hub_world.KIND_CODE)
    day: int
    end: int  # the day's last simulated second: the midnight its step is dated
    changes: list[Change] = field(default_factory=list)

    def instant(self, row: int, salt: int) -> int:
        """A hashed instant in (end - 1 day, end] for a change with no drawn date."""
        return self.end - int(h64(self.seed, self.code, row, self.day, salt) % DAY)

    def rename_at(self, row: int) -> int:
        return self.instant(row, _SALT_RENAME)

    def delete_at(self, row: int) -> int:
        return self.instant(row, _SALT_DELETE)
