"""What the Hub API shows of a repo row: JSON items, commits, discussions, README.md.

All of it is derived from the row's columns and `simulator.rng`, so it is the same on every
call and for every seed-equal world; commits and discussions never change once made.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import yaml

from simulator import vocab
from simulator.hub_world import GATED, Authors, RepoTable
from simulator.rng import h64, hash_ints, hex24, hex40, unit, uscalar
from simulator.world import World, iso

EXPAND = {
    "model": (
        "author", "baseModels", "cardData", "childrenModelCount", "config", "createdAt",
        "disabled", "downloads", "downloadsAllTime", "evalResults", "gated", "gguf", "inference",
        "inferenceProviderMapping", "lastModified", "library_name", "likes", "mask_token",
        "model-index", "pipeline_tag", "private", "resourceGroup", "safetensors", "sha",
        "siblings", "spaces", "tags", "transformersInfo", "trendingScore", "usedStorage",
        "widgetData", "xetEnabled",
    ),
    "dataset": (
        "author", "cardData", "citation", "createdAt", "description", "disabled", "downloads",
        "downloadsAllTime", "gated", "lastModified", "likes", "mainSize", "paperswithcode_id",
        "private", "resourceGroup", "sha", "siblings", "tags", "trendingScore", "usedStorage",
        "xetEnabled",
    ),
    "space": (
        "author", "cardData", "createdAt", "datasets", "disabled", "lastModified", "likes",
        "models", "private", "region", "resourceGroup", "runtime", "sdk", "sha", "siblings",
        "subdomain", "tags", "trendingScore", "usedStorage", "xetEnabled",
    ),
}  # fmt: skip

# Properties the repo routes expand but listings reject with a 400 for the whole request
# (field-notes §1: seen for childrenModelCount and usedStorage on listings)
NOT_ON_LISTINGS = ("childrenModelCount", "usedStorage")
LISTING_EXPAND = {
    kind: tuple(e for e in names if e not in NOT_ON_LISTINGS) for kind, names in EXPAND.items()
}
# salts of the per-row draws deciding which optional fields a repo omits
_SALT_NO_AUTHOR = 7301
_SALT_NO_LINKS = 7302

# Fields of a listing item without expand/full (the Hub's default set, approximately).
DEFAULT_FIELDS = {
    "model": ("likes", "trendingScore", "private", "downloads", "tags", "pipeline_tag",
              "library_name", "createdAt"),
    "dataset": ("author", "disabled", "gated", "lastModified", "likes", "trendingScore",
                "private", "sha", "downloads", "tags", "createdAt"),
    "space": ("author", "likes", "trendingScore", "private", "sdk", "tags", "createdAt"),
}  # fmt: skip
# `full=true`: the default set plus these.
FULL_EXTRA = ("author", "sha", "lastModified", "gated", "disabled", "siblings")

# Truth: the fields a crawler asking for the full expand set gets (what hubtide stores).
TRUTH_FIELDS = {
    "model": ("author", "sha", "lastModified", "createdAt", "private", "gated", "disabled",
              "downloads", "downloadsAllTime", "likes", "trendingScore", "library_name",
              "pipeline_tag", "tags", "cardData", "baseModels", "childrenModelCount"),
    "dataset": ("author", "sha", "lastModified", "createdAt", "private", "gated", "disabled",
                "downloads", "downloadsAllTime", "likes", "trendingScore", "tags", "cardData"),
    # spaces have no `gated` expand property (client's ExpandSpaceProperty_T)
    "space": ("author", "sha", "lastModified", "createdAt", "private", "disabled",
              "likes", "trendingScore", "tags", "cardData", "sdk", "models", "datasets"),
}  # fmt: skip


class Renderer:
    """Turns rows of a world into API JSON."""

    def __init__(self, world: World) -> None:
        self.w = world
        self.seed = world.seed
        self._space_users: dict[int, list[int]] | None = None
        self._space_users_version = -1
        # per-page precomputation (vectorised ids and dates), see `prepare`
        self._pre_kind = ""
        self._pre: dict[int, tuple[str, str, str, str]] = {}
        self._pre_h: dict[int, tuple[int, ...]] = {}
        # cards depend on the row and on names elsewhere (base models, linked repos)
        self._cards: dict[tuple[str, int], dict[str, Any] | None] = {}
        self._cards_stamp: tuple[int, ...] = ()
        self._sib: dict[tuple[str, int], tuple[str, ...]] = {}  # files depend on the row only

    def prepare(self, t: RepoTable, rows: npt.NDArray[np.int64]) -> None:
        """Compute `_id`, `sha`, `createdAt`, `lastModified` of many rows at once (a page)."""
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) == 0:
            return
        s, c = self.seed, t.code
        k = t.cols["n_commits"][rows].astype(np.int64) - 1
        a, b, d = (hash_ints(s, c, rows, k, 7, j).tolist() for j in (1, 2, 3))
        o1 = hash_ints(s, c, rows, 11).tolist()
        created = t.cols["created"][rows]
        cre = _iso_many(created)
        mod = _iso_many(t.cols["modified"][rows])
        cr = (created & 0xFFFFFFFF).tolist()
        hs = [hash_ints(s, c, rows, salt).tolist() for salt in _PRE_SALTS]
        self._pre_h = {row: tuple(h[i] for h in hs) for i, row in enumerate(rows.tolist())}
        self._pre_kind = t.kind
        self._pre = {
            row: (
                f"{cr[i]:08x}{o1[i]:016x}",
                f"{a[i]:016x}{b[i]:016x}{d[i]:016x}"[:40],
                cre[i],
                mod[i],
            )
            for i, row in enumerate(rows.tolist())
        }

    def _h(self, t: RepoTable, row: int, salt: int) -> int:
        """h64(seed, kind, row, salt), from the page's precomputation when there."""
        if self._pre_kind == t.kind:
            hs = self._pre_h.get(row)
            if hs is not None and salt in _PRE_SALTS:
                return hs[_PRE_SALTS.index(salt)]
        return h64(self.seed, t.code, row, salt)

    def unprepare(self) -> None:
        self._pre_h = {}
        self._pre = {}
        self._pre_kind = ""

    # ---- ids ------------------------------------------------------------------------
    def oid_keys(
        self, t: RepoTable, rows: npt.NDArray[np.int64]
    ) -> tuple[npt.NDArray[np.uint64], npt.NDArray[np.uint64]]:
        """The two numbers `oid` prints (creation second, then 64 hashed bits), so `_id`
        order is the order of these pairs: what a listing's cursor breaks ties on."""
        created = (t.cols["created"][rows].astype(np.int64) & 0xFFFFFFFF).astype(np.uint64)
        return created, hash_ints(self.seed, t.code, rows, 11)

    def oid(self, t: RepoTable, row: int) -> str:
        if self._pre_kind == t.kind and row in self._pre:
            return self._pre[row][0]
        return (
            f"{int(t.cols['created'][row]) & 0xFFFFFFFF:08x}" + hex24(self.seed, t.code, row)[:16]
        )

    def commit_id(self, t: RepoTable, row: int, k: int) -> str:
        return hex40(self.seed, t.code, row, k, 7)

    def sha(self, t: RepoTable, row: int) -> str:
        if self._pre_kind == t.kind and row in self._pre:
            return self._pre[row][1]
        return self.commit_id(t, row, int(t.cols["n_commits"][row]) - 1)

    # ---- derived attributes ------------------------------------------------------------
    def popularity(self, t: RepoTable, row: int) -> float:
        return min(max((float(t.cols["mu"][row]) + 1) / 8, 0.0), 1.0)

    def license(self, t: RepoTable, row: int) -> str | None:
        lic = int(t.cols["license"][row])
        if lic < 0 or not t.cols["has_card"][row]:
            return None
        return vocab.LICENSES[lic]

    def base_name(self, t: RepoTable, row: int) -> str | None:
        b = int(t.cols["base"][row]) if t.kind == "model" else -1
        return t.names[b] if b >= 0 else None

    def relation(self, t: RepoTable, row: int) -> str | None:
        r = int(t.cols["relation"][row]) if t.kind == "model" else -1
        return vocab.RELATIONS[r] if r >= 0 else None

    def library(self, t: RepoTable, row: int) -> str | None:
        lib = int(t.cols["library"][row])
        return vocab.LIBRARIES[lib] if lib >= 0 else None

    def pipeline(self, t: RepoTable, row: int) -> str | None:
        p = int(t.cols["pipeline"][row])
        return vocab.PIPELINES[p] if p >= 0 else None

    def languages(self, t: RepoTable, row: int) -> list[str]:
        h = self._h(t, row, 31)
        if h % 3 == 0:
            return []
        out = [vocab.LANGUAGES[h % len(vocab.LANGUAGES)]]
        if (h >> 8) % 5 == 0:
            out.append(vocab.LANGUAGES[(h >> 12) % len(vocab.LANGUAGES)])
        return sorted(set(out))

    def card_data(self, t: RepoTable, row: int) -> dict[str, Any] | None:
        """The README's YAML front matter; richer for popular repos (paper A, M4)."""
        stamp = (self.w.hub["model"].version, self.w.hub["dataset"].version, t.version)
        if stamp != self._cards_stamp or len(self._cards) > 500_000:
            self._cards = {}
            self._cards_stamp = stamp
        key = (t.kind, row)
        if key in self._cards:
            return self._cards[key]
        card = self._card_data(t, row)
        self._cards[key] = card
        return card

    def _card_data(self, t: RepoTable, row: int) -> dict[str, Any] | None:
        if not t.cols["has_card"][row]:
            return None
        pop = self.popularity(t, row)
        h = self._h(t, row, 41)
        card: dict[str, Any] = {}
        lic = self.license(t, row)
        langs = self.languages(t, row)
        if langs and (h % 10) < 3 + 7 * pop:
            card["language"] = langs
        if lic:
            card["license"] = lic
        if t.kind == "model":
            lib = self.library(t, row)
            if lib and ((h >> 4) % 10) < 4 + 6 * pop:
                card["library_name"] = lib
            base = self.base_name(t, row)
            if base:
                card["base_model"] = base
                rel = self.relation(t, row)
                if rel and (h >> 8) % 4 != 0:
                    card["base_model_relation"] = rel
            pipe = self.pipeline(t, row)
            if pipe and ((h >> 12) % 10) < 3 + 6 * pop:
                card["pipeline_tag"] = pipe
            if ((h >> 16) % 10) < 2 + 6 * pop:
                card["tags"] = [vocab.SUFFIXES[(h >> 20) % len(vocab.SUFFIXES)]]
            if ((h >> 24) % 10) < 1 + 5 * pop:
                card["metrics"] = ["accuracy"] if (h >> 28) % 2 else ["f1"]
        elif t.kind == "dataset":
            card["task_categories"] = [vocab.TASK_CATEGORIES[h % len(vocab.TASK_CATEGORIES)]]
            if ((h >> 8) % 10) < 3 + 6 * pop:
                card["size_categories"] = [vocab.SIZE_CATEGORIES[(h >> 12) % 5]]
            if ((h >> 16) % 10) < 2 + 6 * pop:
                card["pretty_name"] = t.names[row].split("/")[-1].replace("-", " ").title()
        else:
            card["title"] = t.names[row].split("/")[-1].replace("-", " ").title()
            card["emoji"] = "🚀"
            card["sdk"] = vocab.SDKS[int(t.cols["sdk"][row])]
            ms, ds = self.space_links(t, row)
            if ms:
                card["models"] = ms
            if ds:
                card["datasets"] = ds
        return card

    def card_sections(self, t: RepoTable, row: int) -> list[str]:
        pop = self.popularity(t, row)
        secs = vocab.CARD_SECTIONS if t.kind == "model" else vocab.DATASET_SECTIONS
        h = self._h(t, row, 43)
        k = round(pop * len(secs) + (h % 3) - 1)
        return list(secs[: max(0, min(len(secs), k))])

    def readme(self, t: RepoTable, row: int) -> bytes | None:
        card = self.card_data(t, row)
        if card is None:
            return None
        front = yaml.safe_dump(card, sort_keys=False, allow_unicode=True)
        name = t.names[row]
        lines = ["---", front.rstrip("\n"), "---", "", f"# {name.split('/')[-1]}", ""]
        if t.kind == "model" and card.get("base_model"):
            lines += [f"This model is a fine-tuned version of [{card['base_model']}]"
                      f"(https://huggingface.co/{card['base_model']}).", ""]  # fmt: skip
        for sec in self.card_sections(t, row):
            lines += [f"## {sec}", "", f"{sec} of {name}. More information needed.", ""]
        return "\n".join(lines).encode("utf-8")

    def siblings(self, t: RepoTable, row: int) -> list[dict[str, Any]]:
        return [{"rfilename": f} for f in self.files(t, row)]

    def files(self, t: RepoTable, row: int) -> tuple[str, ...]:
        files = self._sib.get((t.kind, row))
        if files is None:
            if len(self._sib) > 500_000:
                self._sib = {}
            files = self._sib[(t.kind, row)] = self._files(t, row)
        return files

    def _files(self, t: RepoTable, row: int) -> tuple[str, ...]:
        files = [".gitattributes"]
        if t.cols["has_card"][row]:
            files.append("README.md")
        if t.kind == "model":
            lib = self.library(t, row)
            if lib == "gguf":
                files.append("model.Q4_K_M.gguf")
            elif lib == "peft":
                files += ["adapter_config.json", "adapter_model.safetensors"]
            else:
                files += ["config.json", "model.safetensors"]
                if lib == "transformers":
                    files += ["tokenizer.json", "tokenizer_config.json"]
        elif t.kind == "dataset":
            files += ["data/train-00000-of-00001.parquet"]
            if h64(self.seed, t.code, row, 5) % 2:
                files.append("data/test-00000-of-00001.parquet")
        else:
            files += ["app.py", "requirements.txt"]
        return tuple(files)

    def file_size(self, t: RepoTable, row: int, path: str) -> int:
        # hash() of an int tuple is stable across runs (only str hashing is salted)
        h = hash((self.seed, t.code, row, len(path), 9)) & 0x7FFFFFFFFFFF
        if path.endswith((".safetensors", ".gguf", ".parquet", ".bin")):
            return 1_000_000 + h % 4_000_000_000
        return 100 + h % 20_000

    def tags(self, t: RepoTable, row: int) -> list[str]:
        tags: list[str] = []
        card = self.card_data(t, row) or {}
        if t.kind == "model":
            lib = self.library(t, row)
            if lib:
                tags.append(lib)
            if lib in ("transformers", "diffusers", "sentence-transformers", "timm", "peft"):
                tags.append("safetensors")
            if lib == "gguf":
                tags.append("gguf")
            pipe = self.pipeline(t, row)
            if pipe:
                tags.append(pipe)
            for x in card.get("tags", []):
                tags.append(x)
            for lang in card.get("language", []):
                tags.append(lang)
            base = self.base_name(t, row)
            if base:
                rel = self.relation(t, row) or "finetune"
                tags += [f"base_model:{base}", f"base_model:{rel}:{base}"]
        elif t.kind == "dataset":
            for x in card.get("task_categories", []):
                tags.append(f"task_categories:{x}")
            for x in card.get("size_categories", []):
                tags.append(f"size_categories:{x}")
            for lang in card.get("language", []):
                tags.append(f"language:{lang}")
            tags.append("format:parquet")
        else:
            tags.append(vocab.SDKS[int(t.cols["sdk"][row])])
            pipe = self.pipeline(t, row)  # the task tag hub_gen gives spaces using models
            if pipe:
                tags.append(pipe)
        lic = self.license(t, row)
        if lic:
            tags.append(f"license:{lic}")
        tags.append("region:us")
        return list(dict.fromkeys(tags))

    def space_links(self, t: RepoTable, row: int) -> tuple[list[str], list[str]]:
        links = t.links.get(row)
        if not links:
            return [], []
        m, d = self.w.hub["model"], self.w.hub["dataset"]
        ms = [m.names[r] for r in links[0] if m.cols["alive"][r]]
        ds = [d.names[r] for r in links[1] if d.cols["alive"][r]]
        return ms, ds

    def spaces_using(self, model_row: int) -> list[str]:
        s = self.w.hub["space"]
        if self._space_users is None or self._space_users_version != s.version:
            users: dict[int, list[int]] = {}
            for srow, (ms, _ds) in s.links.items():
                for mrow in ms:
                    users.setdefault(mrow, []).append(srow)
            self._space_users = users
            self._space_users_version = s.version
        return [s.names[r] for r in self._space_users.get(model_row, []) if s.cols["alive"][r]]

    # ---- items ----------------------------------------------------------------------------
    def field(self, t: RepoTable, row: int, name: str) -> Any:
        """One API field of a row; `_MISSING` when the Hub would omit it."""
        fn = FIELD_FUNCS.get(name)
        return _MISSING if fn is None else fn(self, t, row)

    def item(
        self, t: RepoTable, row: int, fields: tuple[str, ...], *, legacy: bool = False
    ) -> dict[str, Any]:
        out: dict[str, Any] = {"_id": self.oid(t, row), "id": t.names[row]}
        for f in fields:
            v = self.field(t, row, f)
            if v is not _MISSING:
                out[f] = v
        if legacy and t.kind == "model":
            out["modelId"] = t.names[row]
        return out

    def items(
        self, t: RepoTable, rows: list[int], fields: tuple[str, ...], *, legacy: bool = False
    ) -> list[dict[str, Any]]:
        """Many rows at once, field by field (columns vectorised where they can be); the
        result equals `[item(t, r, fields) for r in rows]`."""
        if not rows:
            return []
        arr = np.asarray(rows, dtype=np.int64)
        self.prepare(t, arr)
        try:
            cols = []
            for f in fields:
                vec = COLUMN_FUNCS.get(f)
                if vec is not None:
                    cols.append(vec(self, t, arr))
                else:
                    fn = FIELD_FUNCS.get(f)
                    cols.append(
                        [_MISSING] * len(rows) if fn is None else [fn(self, t, r) for r in rows]
                    )
            names = t.names
            pre = self._pre
            out: list[dict[str, Any]] = []
            model_legacy = legacy and t.kind == "model"
            for i, row in enumerate(rows):
                d: dict[str, Any] = {"_id": pre[row][0], "id": names[row]}
                for f, col in zip(fields, cols, strict=True):
                    v = col[i]
                    if v is not _MISSING:
                        d[f] = v
                if model_legacy:
                    d["modelId"] = names[row]
                out.append(d)
            return out
        finally:
            self.unprepare()

    def info(self, t: RepoTable, row: int, expand: tuple[str, ...] | None) -> dict[str, Any]:
        """Repo info: the full object without expand, else exactly the expanded fields."""
        if expand:
            return self.item(t, row, expand)
        fields = tuple(dict.fromkeys(DEFAULT_FIELDS[t.kind] + FULL_EXTRA + TRUTH_FIELDS[t.kind]))
        if t.kind == "model":
            fields += ("spaces", "safetensors", "config", "transformersInfo", "usedStorage")
        if t.kind == "space":
            fields += ("runtime", "subdomain")
        return self.item(t, row, fields, legacy=True)

    # ---- commits ----------------------------------------------------------------------------
    def committers(self, t: RepoTable, row: int) -> list[str]:
        a: Authors = self.w.authors
        owner = int(t.cols["author"][row])
        primary = a.pick_user(uscalar(self.seed, t.code, row, 81)) if a.is_org[owner] else owner
        pool = [primary]
        for j in range(1, int(t.cols["n_committers"][row])):
            h = h64(self.seed, t.code, row, 82, j)
            # a third of co-committers come from the prolific core, the rest from anyone
            if h % 3 == 0:
                pool.append(a.pick_user((h >> 11) / float(1 << 53)))
            else:
                pool.append((h >> 11) % a.n_users)
        return list(dict.fromkeys(a.names[p] for p in pool))

    def commit_date(self, t: RepoTable, row: int, k: int) -> int:
        n0 = int(t.cols["n_init"][row])
        c0 = int(t.cols["created"][row])
        if k < n0:
            m0 = int(t.cols["mod_init"][row])
            if n0 == 1 or k == 0:
                return c0 if k == 0 else m0
            if k == n0 - 1:
                return m0
            f = (k + 0.6 * (uscalar(self.seed, t.code, row, k, 83) - 0.5)) / (n0 - 1)
            return c0 + int((m0 - c0) * f)
        for first, count, ts in t.commit_log.get(row, []):
            if first <= k < first + count:
                return ts - (first + count - 1 - k) * 60
        return int(t.cols["modified"][row])

    def commit(self, t: RepoTable, row: int, k: int, pool: list[str]) -> dict[str, Any]:
        h = h64(self.seed, t.code, row, k, 84)
        if k == 0:
            title, authors = "initial commit", [pool[0]]
        else:
            # bot commits (Librarian Bot, SFconvert) are rare: about 2 %
            human = vocab.COMMIT_TITLES[2:]
            bot = (h >> 40) % 100 < 2
            title = vocab.COMMIT_TITLES[h % 2] if bot else human[h % len(human)]
            if title.startswith("Librarian Bot"):
                authors = ["librarian-bot"]
            elif title.startswith("Adding `safetensors`"):
                authors = ["SFconvertbot"]
            else:
                authors = [pool[0] if (h >> 16) % 10 < 6 else pool[(h >> 20) % len(pool)]]
        return {
            "id": self.commit_id(t, row, k),
            "title": title,
            "message": "",
            "date": iso(self.commit_date(t, row, k)),
            "authors": [{"user": u, "avatar": f"/avatars/{u}.svg"} for u in authors],
        }

    def commits(
        self, t: RepoTable, row: int, upto: int, start: int, count: int
    ) -> list[dict[str, Any]]:
        """Commits newest first: positions [start, start+count) of the history ending at
        commit index `upto` (inclusive)."""
        pool = self.committers(t, row)
        ks = range(upto - start, max(upto - start - count, -1), -1)
        return [self.commit(t, row, k, pool) for k in ks]

    def commit_index(self, t: RepoTable, row: int, rev: str) -> int | None:
        """Index of the commit a revision names, or None."""
        n = int(t.cols["n_commits"][row])
        if rev in ("main", "HEAD"):
            return n - 1
        if len(rev) >= 7 and all(ch in "0123456789abcdef" for ch in rev):
            # newest commits are the ones asked about most; scan back from the head
            for k in range(n - 1, max(n - 2000, -1), -1):
                if self.commit_id(t, row, k).startswith(rev):
                    return k
        return None

    # ---- discussions ----------------------------------------------------------------------------
    def discussion_created(self, t: RepoTable, row: int, num: int) -> int:
        d0 = int(t.cols["disc_init"][row])
        if num <= d0:
            c0 = int(t.cols["created"][row])
            end = max(self.w.start, c0 + 1)
            return c0 + int(
                (end - c0) * (num - 0.5 * uscalar(self.seed, t.code, row, num, 91)) / max(d0, 1)
            )
        later = t.disc_log.get(row, [])
        i = num - d0 - 1
        return later[i] if 0 <= i < len(later) else int(t.cols["modified"][row])

    def discussion(self, t: RepoTable, row: int, num: int) -> dict[str, Any]:
        h = h64(self.seed, t.code, row, num, 92)
        is_pr = (h % 10) < 3
        status = ("open", "closed", "merged" if is_pr else "closed", "open")[(h >> 4) % 4]
        if num in t.disc_closed.get(row, {}) and status == "open":
            status = "merged" if is_pr else "closed"
        a = self.w.authors
        user = a.names[a.pick_user(uscalar(self.seed, t.code, row, num, 93))]
        d: dict[str, Any] = {
            "num": num,
            "title": vocab.DISCUSSION_TITLES[(h >> 8) % len(vocab.DISCUSSION_TITLES)],
            "status": status,
            "createdAt": iso(self.discussion_created(t, row, num)),
            "isPullRequest": is_pr,
            "numComments": 1 + (h >> 12) % 6,
            "topReactions": [],
            "pinned": False,
            "repo": {"name": t.names[row], "type": t.kind},
        }
        if (h >> 20) % 25 != 0:  # some authors deleted their account
            d["author"] = {"name": user, "type": "user", "isPro": False, "isHf": False}
        return d

    def discussion_details(self, t: RepoTable, row: int, num: int) -> dict[str, Any]:
        d = self.discussion(t, row, num)
        created = self.discussion_created(t, row, num)
        events: list[dict[str, Any]] = []
        a = self.w.authors
        for j in range(int(d["numComments"])):
            who = d.get("author", {}).get("name") if j == 0 else a.names[
                a.pick_user(uscalar(self.seed, t.code, row, num, j, 94))]  # fmt: skip
            ev: dict[str, Any] = {
                "id": hex24(self.seed, t.code, row, num, j),
                "type": "comment",
                "createdAt": iso(created + j * 3600),
                "data": {"edited": False, "hidden": False, "latest": {"raw": f"Comment {j + 1}."}},
            }
            if who:
                ev["author"] = {"name": who, "type": "user"}
            events.append(ev)
        if d["status"] != "open":
            events.append({
                "id": hex24(self.seed, t.code, row, num, 99),
                "type": "status-change",
                "createdAt": iso(t.disc_closed.get(row, {}).get(num, created + 86_400)),
                "data": {"status": d["status"]},
            })  # fmt: skip
        d["events"] = events
        if d["isPullRequest"]:
            d["changes"] = {"base": "refs/heads/main"}
            if d["status"] == "merged":
                d["changes"]["mergeCommitId"] = hex40(self.seed, t.code, row, num, 95)
            d["filesWithConflicts"] = []
        return d


_PRE_SALTS = (31, 41, 43, 51)


def _iso_many(ts: npt.NDArray[np.int64]) -> list[str]:
    text = np.datetime_as_string(np.asarray(ts, dtype="datetime64[s]"), unit="s")
    return [x + ".000Z" for x in text.tolist()]


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


_MISSING: Any = _Missing()


def _f_author(self: Renderer, t: RepoTable, row: int) -> Any:
    # both official clients type `author` optional; a small share of repos omit it
    share = self.w.config.author_omitted
    if share > 0 and uscalar(self.seed, t.code, row, _SALT_NO_AUTHOR) < share:
        return _MISSING
    c = t.cols
    return self.w.authors.names[int(c["author"][row])]


def _f_sha(self: Renderer, t: RepoTable, row: int) -> Any:
    return self.sha(t, row)


def _f_lastModified(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    kind = t.kind
    if self._pre_kind == kind and row in self._pre:
        return self._pre[row][3]
    return iso(int(c["modified"][row]))


def _f_createdAt(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    kind = t.kind
    if self._pre_kind == kind and row in self._pre:
        return self._pre[row][2]
    return iso(int(c["created"][row]))


def _f_private(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    return bool(c["private"][row])


def _f_gated(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    g = int(c["gated"][row])
    return False if g == 0 else GATED[g]


def _f_disabled(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    return bool(c["disabled"][row])


def _f_downloads(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    kind = t.kind
    return int(c["downloads"][row]) if kind != "space" else _MISSING


def _f_downloadsAllTime(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    kind = t.kind
    return int(c["downloads_all"][row]) if kind != "space" else _MISSING


def _f_likes(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    return int(c["likes"][row])


def _f_trendingScore(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    return round(float(c["trending"][row]))


def _f_library_name(self: Renderer, t: RepoTable, row: int) -> Any:
    return self.library(t, row) or _MISSING


def _f_pipeline_tag(self: Renderer, t: RepoTable, row: int) -> Any:
    return self.pipeline(t, row) or _MISSING


def _f_tags(self: Renderer, t: RepoTable, row: int) -> Any:
    return self.tags(t, row)


def _f_cardData(self: Renderer, t: RepoTable, row: int) -> Any:
    card = self.card_data(t, row)
    return card if card is not None else _MISSING


def _f_siblings(self: Renderer, t: RepoTable, row: int) -> Any:
    return self.siblings(t, row)


def _f_sdk(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    kind = t.kind
    return vocab.SDKS[int(c["sdk"][row])] if kind == "space" else _MISSING


def _f_models(self: Renderer, t: RepoTable, row: int) -> Any:
    return _space_link_field(self, t, row, 0)


def _f_datasets(self: Renderer, t: RepoTable, row: int) -> Any:
    return _space_link_field(self, t, row, 1)


def _space_link_field(self: Renderer, t: RepoTable, row: int, which: int) -> Any:
    """A Space's `models` / `datasets`: omitted when empty in the configured share (the
    official clients' assumption: huggingface_hub's SpaceInfo pops them with a default)."""
    if t.kind != "space":
        return _MISSING
    names = self.space_links(t, row)[which]
    share = self.w.config.space_links_omitted
    if not names and share > 0 and uscalar(self.seed, t.code, row, _SALT_NO_LINKS) < share:
        return _MISSING
    return names


def _f_baseModels(self: Renderer, t: RepoTable, row: int) -> Any:
    base = self.base_name(t, row)
    if base is None:
        return _MISSING
    return {"relation": self.relation(t, row) or "finetune", "models": [{"id": base}]}


def _f_childrenModelCount(self: Renderer, t: RepoTable, row: int) -> Any:
    return int(t.children.get(row, 0))


def _f_usedStorage(self: Renderer, t: RepoTable, row: int) -> Any:
    return sum(self.file_size(t, row, f) for f in self.files(t, row))


def _f_resourceGroup(self: Renderer, t: RepoTable, row: int) -> Any:
    return _MISSING


def _f_xetEnabled(self: Renderer, t: RepoTable, row: int) -> Any:
    return False


def _f_spaces(self: Renderer, t: RepoTable, row: int) -> Any:
    return self.spaces_using(row)


def _f_safetensors(self: Renderer, t: RepoTable, row: int) -> Any:
    if "model.safetensors" not in self.files(t, row):
        return _MISSING
    n = 10_000_000 + self._h(t, row, 51) % 8_000_000_000
    return {"parameters": {"F32": n}, "total": n}


def _f_config(self: Renderer, t: RepoTable, row: int) -> Any:
    lib = self.library(t, row)
    if lib != "transformers":
        return _MISSING
    fam = t.names[row].split("/")[-1].split("-")[0]
    return {"architectures": [f"{fam.title()}Model"], "model_type": fam}


def _f_transformersInfo(self: Renderer, t: RepoTable, row: int) -> Any:
    if self.library(t, row) != "transformers":
        return _MISSING
    return {"auto_model": "AutoModel", "pipeline_tag": self.pipeline(t, row),
            "processor": "AutoTokenizer"}  # fmt: skip


def _f_inference(self: Renderer, t: RepoTable, row: int) -> Any:
    c = t.cols
    return "warm" if c["mu"][row] > 6 else _MISSING


def _f_inferenceProviderMapping(self: Renderer, t: RepoTable, row: int) -> Any:
    return []


def _f_gguf(self: Renderer, t: RepoTable, row: int) -> Any:
    return _MISSING


def _f_region(self: Renderer, t: RepoTable, row: int) -> Any:
    return "us"


def _f_subdomain(self: Renderer, t: RepoTable, row: int) -> Any:
    return t.names[row].replace("/", "-").replace(".", "-").lower()


def _f_runtime(self: Renderer, t: RepoTable, row: int) -> Any:
    return {"stage": "RUNNING" if h64(self.seed, row, 61) % 5 else "SLEEPING",
            "hardware": {"current": "cpu-basic", "requested": "cpu-basic"}}  # fmt: skip


def _f_description(self: Renderer, t: RepoTable, row: int) -> Any:
    return f"Dataset {t.names[row]}."


def _f_citation(self: Renderer, t: RepoTable, row: int) -> Any:
    return _MISSING


def _f_paperswithcode_id(self: Renderer, t: RepoTable, row: int) -> Any:
    return None


def _f_mainSize(self: Renderer, t: RepoTable, row: int) -> Any:
    return self.file_size(t, row, "data/train-00000-of-00001.parquet")


FIELD_FUNCS: dict[str, Any] = {
    "author": _f_author,
    "sha": _f_sha,
    "lastModified": _f_lastModified,
    "createdAt": _f_createdAt,
    "private": _f_private,
    "gated": _f_gated,
    "disabled": _f_disabled,
    "downloads": _f_downloads,
    "downloadsAllTime": _f_downloadsAllTime,
    "likes": _f_likes,
    "trendingScore": _f_trendingScore,
    "library_name": _f_library_name,
    "pipeline_tag": _f_pipeline_tag,
    "tags": _f_tags,
    "cardData": _f_cardData,
    "siblings": _f_siblings,
    "sdk": _f_sdk,
    "models": _f_models,
    "datasets": _f_datasets,
    "baseModels": _f_baseModels,
    "childrenModelCount": _f_childrenModelCount,
    "usedStorage": _f_usedStorage,
    "resourceGroup": _f_resourceGroup,
    "xetEnabled": _f_xetEnabled,
    "spaces": _f_spaces,
    "safetensors": _f_safetensors,
    "config": _f_config,
    "transformersInfo": _f_transformersInfo,
    "inference": _f_inference,
    "inferenceProviderMapping": _f_inferenceProviderMapping,
    "gguf": _f_gguf,
    "evalResults": _f_gguf,
    "mask_token": _f_gguf,
    "widgetData": _f_gguf,
    "model-index": _f_gguf,
    "region": _f_region,
    "subdomain": _f_subdomain,
    "runtime": _f_runtime,
    "description": _f_description,
    "citation": _f_citation,
    "paperswithcode_id": _f_paperswithcode_id,
    "mainSize": _f_mainSize,
}


# ---- whole-column versions of the simple fields (see `Renderer.items`) ----------------------
def _c_int(col: str, spaces_missing: bool = False) -> Any:
    def fn(self: Renderer, t: RepoTable, rows: npt.NDArray[np.int64]) -> list[Any]:
        if spaces_missing and t.kind == "space":
            return [_MISSING] * len(rows)
        return t.cols[col][rows].tolist()  # type: ignore[no-any-return]

    return fn


def _c_bool(col: str) -> Any:
    def fn(self: Renderer, t: RepoTable, rows: npt.NDArray[np.int64]) -> list[Any]:
        return t.cols[col][rows].astype(bool).tolist()  # type: ignore[no-any-return]

    return fn


def _c_vocab(col: str, words: tuple[str, ...], kind: str | None = None) -> Any:
    table = [*words, _MISSING]  # index -1 -> missing

    def fn(self: Renderer, t: RepoTable, rows: npt.NDArray[np.int64]) -> list[Any]:
        if kind is not None and t.kind != kind:
            return [_MISSING] * len(rows)
        return [table[i] for i in t.cols[col][rows].tolist()]

    return fn


def _c_author(self: Renderer, t: RepoTable, rows: npt.NDArray[np.int64]) -> list[Any]:
    names = self.w.authors.names
    out: list[Any] = [names[a] for a in t.cols["author"][rows].tolist()]
    share = self.w.config.author_omitted
    if share > 0:  # the same draw as _f_author (unit == uscalar on the same values)
        for i in np.flatnonzero(unit(self.seed, t.code, rows, _SALT_NO_AUTHOR) < share).tolist():
            out[i] = _MISSING
    return out


def _c_gated(self: Renderer, t: RepoTable, rows: npt.NDArray[np.int64]) -> list[Any]:
    table: list[Any] = [False, GATED[1], GATED[2]]
    return [table[g] for g in t.cols["gated"][rows].tolist()]


def _c_trending(self: Renderer, t: RepoTable, rows: npt.NDArray[np.int64]) -> list[Any]:
    return [round(x) for x in t.cols["trending"][rows].tolist()]


def _c_pre(index: int) -> Any:
    def fn(self: Renderer, t: RepoTable, rows: npt.NDArray[np.int64]) -> list[Any]:
        pre = self._pre
        return [pre[r][index] for r in rows.tolist()]

    return fn


COLUMN_FUNCS: dict[str, Any] = {
    "author": _c_author,
    "sha": _c_pre(1),
    "createdAt": _c_pre(2),
    "lastModified": _c_pre(3),
    "private": _c_bool("private"),
    "disabled": _c_bool("disabled"),
    "gated": _c_gated,
    "downloads": _c_int("downloads", spaces_missing=True),
    "downloadsAllTime": _c_int("downloads_all", spaces_missing=True),
    "likes": _c_int("likes"),
    "trendingScore": _c_trending,
    "library_name": _c_vocab("library", vocab.LIBRARIES),
    "pipeline_tag": _c_vocab("pipeline", vocab.PIPELINES),
    "sdk": _c_vocab("sdk", vocab.SDKS, kind="space"),
}
