"""The 27 concepts of the LLM experiments as counterfactual word pairs (paper section 6, app. J).

Two sources, same 27 concept names in the paper's heatmap order:

- ``paper``: the authors' ``[base - target].txt`` files (from Park, Choe & Veitch's
  ``linear_rep_geometry`` repository). They carry no licence, so they are never shipped: they are
  read from a directory the user names (``directory=`` or ``$IPTA_WORD_PAIRS_DIR``) or
  downloaded from the repository's raw files at a pinned commit; either way every file must match
  the sha256 below.
- ``embedded``: our own pairs, generated at run time from offline lexical libraries and word lists
  written for this project (:mod:`ipta.concept_data`).

Words are Unicode-NFC normalised. Nothing is filtered: multi-token words, duplicates and identical
pairs are kept, as the authors did, and counted in :meth:`ConceptSet.report`.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ENV_VAR = "IPTA_WORD_PAIRS_DIR"
PAPER_REPO = "KihoPark/linear_rep_geometry"
PAPER_COMMIT = "40bee00b50a6fafcf2ee4db2c01602023aa366cc"
RAW_URL = f"https://raw.githubusercontent.com/{PAPER_REPO}/{PAPER_COMMIT}/word_pairs/"

# (concept name, file name, sha256 of the file at PAPER_COMMIT), in the order of Figure 3.
PAPER_FILES: tuple[tuple[str, str, str], ...] = (
    ("verb-3pSg", "[verb - 3pSg].txt",
     "cb6726f4262f0e202c49707983cd18cae0e3c26c37fd3c15aa73f490230fb878"),
    ("verb-Ving", "[verb - Ving].txt",
     "2002ea3917fb578cecd1a38998075bcf0d6cc1ce598198e9bc76d3e609cb89ae"),
    ("verb-Ved", "[verb - Ved].txt",
     "0397eb83d6d12f2c86084dfa8522e2270b0bb2fe946d47800de8e932c25ed8e6"),
    ("Ving-3pSg", "[Ving - 3pSg].txt",
     "16409fae45eea60d0b7433eba9a9b74f5985ff572ff7f8174623ccdd044b263f"),
    ("Ving-Ved", "[Ving - Ved].txt",
     "0f75a20573e68b8a181b0387f5f827bcf98f9380279b2941a635a13974814e9f"),
    ("3pSg-Ved", "[3pSg - Ved].txt",
     "8ce48ac01e360bfc6fff4e5e59ffcc7289815f4c0d00eea7b0fa4039a27a56e5"),
    ("verb-V+able", "[verb - V + able].txt",
     "293d7d86810bfbf5e5d104cd702f6171cfb42623510b577ac06a7c526020f2b2"),
    ("verb-V+er", "[verb - V + er].txt",
     "ca10f7428edc6ef5b8c34bccd8883f8f830b1e7072d548bacb89ec4d0d5efed2"),
    ("verb-V+tion", "[verb - V + tion].txt",
     "bc270503a05162c6b033eed55f1d1937eac2d88bd3f8bbef253d0b85848c758e"),
    ("verb-V+ment", "[verb - V + ment].txt",
     "454df5fffc41641852fc8c30cd6b1182dbca6084632c20d5646514619c530b49"),
    ("adj-un+adj", "[adj - un + adj].txt",
     "314a153805b279a91fd5f37ee6108d21ab6c09722e159fbfb4ebfaf150d7f5fc"),
    ("adj-adj+ly", "[adj - adj + ly].txt",
     "1f17b894054f2eaa5e4acd993174b5ab0fa96a38bf5bf7e6f5c75272e2a9bd5c"),
    ("small-big", "[small - big].txt",
     "106f7719df4d965139c0ac99322752cb69f297c24696e22d9b613f90d1d90f5c"),
    ("thing-color", "[thing - color].txt",
     "535b5f5d956a0d331c4fdae458d4183be806af8a755a3e52a8a17f025a4074e0"),
    ("thing-part", "[thing - part].txt",
     "45315f748dbcff40907fc3052926bea9770419b7bca675339cbc7dbd33bdd8f7"),
    ("country-capital", "[country - capital].txt",
     "d31b453725b6693448e53469f314e7439353b148b0a698ab59f34bcbcb53cd6a"),
    ("pronoun-possessive", "[pronoun - possessive].txt",
     "ca68c76520392603ce35d784fd32d6ca058bcf95ff66145659d68d1b619c1cac"),
    ("male-female", "[male - female].txt",
     "3bb8ee2a9c6ba58776035f9d2b3c5e140ff39a8cc2b05e9c3f974a2f5c1f4ab7"),
    ("lower-upper", "[lower - upper].txt",
     "3e703d4e7c767a62c7fde853790b294e9bed8816f0f56944aedb09b6660bf569"),
    ("noun-plural", "[noun - plural].txt",
     "9a8ae033619669285f500eaa8a4a121970bf73305d380423cc275ec77ffe3a15"),
    ("adj-comparative", "[adj - comparative].txt",
     "8be274edce9294889e0fa044c9c40f9afac11b7dbc3bcd84f37306d6dfe1f133"),
    ("adj-superlative", "[adj - superlative].txt",
     "26ffdbff6a2e62d0bda5549f5b8c994869e51cc47e8ef03743bd192c504398c7"),
    ("frequent-infrequent", "[frequent - infrequent].txt",
     "9f4362cfc03997fd451d2ea3b221a66a6caebf3208a0ca8e26bbcda3b81a6b4d"),
    ("English-French", "[English - French].txt",
     "3c59832474e70b416687375a0320eb9c7b32be5b0a80db7286b94e14ad22c639"),
    ("French-German", "[French - German].txt",
     "24c84eeb235b6e50fb9dd085d4097066ce5bf20ccbf7bcc01c702d99fecb1f2f"),
    ("French-Spanish", "[French - Spanish].txt",
     "aa8ac2120054367c06defab7a2b295abd16f7705bf7f64538b5f6a927c3e6d69"),
    ("German-Spanish", "[German - Spanish].txt",
     "972ac9dac829a97cd209662554868a2b34bd00e427d4d37f60efe454e55838e8"),
)


@dataclass(frozen=True)
class PinnedFiles:
    """Files of one commit of a public repository, each checked by its SHA-256: what the cache
    entry of a download is keyed by, whole."""

    repo: str
    commit: str
    files: tuple[tuple[str, str, str], ...]
    """(concept name, file name, sha256), in the order of Figure 3."""
    url: str
    """The folder's raw URL at that commit."""


PAPER_SOURCE = PinnedFiles(PAPER_REPO, PAPER_COMMIT, PAPER_FILES, RAW_URL)

CONCEPT_NAMES: tuple[str, ...] = tuple(name for name, _, _ in PAPER_FILES)
"""The 27 concept names, in the row/column order of the paper's Figure 3."""

SOURCES = ("embedded", "paper")


class ConceptDataError(ValueError):
    """Concept files that are missing, malformed or not the ones the paper used."""


@dataclass(frozen=True)
class ConceptSet:
    """27 concepts, each a list of (base, target) word pairs, in the paper's order."""

    names: tuple[str, ...]
    pairs: dict[str, list[tuple[str, str]]]
    source: str
    """Where the pairs came from: ``embedded`` or ``paper`` (and the directory or URL)."""

    def report(self) -> list[dict[str, object]]:
        """Per concept: pairs, distinct pairs, duplicated lines and identical (base == target) pairs."""
        rows = []
        for name in self.names:
            pairs = self.pairs[name]
            counts = Counter(pairs)
            rows.append({"concept": name, "pairs": len(pairs), "distinct": len(counts),
                         "duplicates": len(pairs) - len(counts),
                         "identical": sum(b == t for b, t in pairs)})
        return rows

    def subset(self, names: tuple[str, ...] | list[str]) -> "ConceptSet":
        """The same set restricted to ``names`` (kept in the paper's order)."""
        unknown = [n for n in names if n not in self.names]
        if unknown:
            raise ConceptDataError(f"unknown concept {unknown[0]!r}; known: {', '.join(self.names)}")
        keep = tuple(n for n in self.names if n in names)
        return ConceptSet(keep, {n: self.pairs[n] for n in keep}, self.source)

    def checksum(self) -> str:
        """SHA-256 of the names and pairs, for cache keys."""
        h = hashlib.sha256()
        for name in self.names:
            h.update(name.encode() + b"\0")
            for base, target in self.pairs[name]:
                h.update(f"{base}\t{target}\n".encode())
        return h.hexdigest()


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def parse_pairs(text: str, where: str) -> list[tuple[str, str]]:
    """Parse ``base<TAB>target`` lines (blank lines skipped); a malformed line is an error."""
    pairs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 2 or not fields[0].strip() or not fields[1].strip():
            raise ConceptDataError(f"{where}, line {number}: expected 'base<TAB>target', "
                                   f"got {line!r}")
        pairs.append((_nfc(fields[0]), _nfc(fields[1])))
    return pairs


MAX_PAIR_FILE_BYTES = 1 << 20
"""The paper's largest word-pair file has 3.4 kB; anything past 1 MiB is not one of them and is
refused before it is read."""


def _read_small(file: Path, where: str) -> bytes:
    size = file.stat().st_size
    if size > MAX_PAIR_FILE_BYTES:
        raise ConceptDataError(f"{where}: {size} bytes, more than any word-pair file of the paper "
                               f"can hold ({MAX_PAIR_FILE_BYTES}); not read")
    with open(file, "rb") as handle:  # the size may change between stat and read
        return handle.read(MAX_PAIR_FILE_BYTES + 1)


def _checked_text(data: bytes, file_name: str, expected: str, where: str) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected:
        raise ConceptDataError(
            f"{where}: sha256 {digest} does not match the paper's file ({expected}); these are "
            f"not the word pairs of {PAPER_REPO}@{PAPER_COMMIT[:12]}")
    return data.decode("utf-8")


def _download_to(directory: Path, source: PinnedFiles = PAPER_SOURCE) -> None:
    """Fetch the pinned files of ``source`` from their raw URLs into ``directory``."""
    from ipta.progress import bar

    for _, file_name, _ in bar(source.files, desc="word pairs", leave=False):
        url = source.url + urllib.parse.quote(file_name)
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                (directory / file_name).write_bytes(response.read(MAX_PAIR_FILE_BYTES + 1))
        except OSError as e:
            raise ConceptDataError(
                f"could not download {url} ({e}); set ${ENV_VAR} or pass directory= to read the "
                "files from a local copy instead") from e


def _paper_directory(directory: str | None) -> Path:
    chosen = directory or os.environ.get(ENV_VAR)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_dir():
            origin = "directory=" if directory else f"${ENV_VAR}"
            raise ConceptDataError(f"word-pair directory {str(path)!r} (from {origin}) does not "
                                   "exist; point it at the folder holding the 27 "
                                   "'[base - target].txt' files")
        return path
    from ipta.cache import get_or_build_dir

    return get_or_build_dir("word_pairs", {"source": PAPER_SOURCE}, _download_to,
                            code=("ipta.lm.concepts",))


def load_paper_concepts(directory: str | None = None) -> ConceptSet:
    """The authors' 27 files from ``directory``, ``$IPTA_WORD_PAIRS_DIR`` or the pinned URL."""
    path = _paper_directory(directory)
    pairs = {}
    for name, file_name, expected in PAPER_FILES:
        file = path / file_name
        if not file.is_file():
            raise ConceptDataError(f"{str(path)!r} lacks the file {file_name!r} of concept {name}")
        text = _checked_text(_read_small(file, str(file)), file_name, expected, str(file))
        pairs[name] = parse_pairs(text, str(file))
    return ConceptSet(CONCEPT_NAMES, pairs, f"paper ({path.name})")


def load_concept_set(source: str = "embedded", directory: str | None = None) -> ConceptSet:
    """The 27 concepts from ``source``: ``embedded`` (ours, offline) or ``paper`` (the authors')."""
    if source == "paper":
        return load_paper_concepts(directory)
    if source == "embedded":
        from ipta.lm.concept_data import embedded_pairs

        pairs = {name: [(_nfc(b), _nfc(t)) for b, t in ps]
                 for name, ps in embedded_pairs().items()}
        return ConceptSet(CONCEPT_NAMES, {n: pairs[n] for n in CONCEPT_NAMES}, "embedded")
    raise ConceptDataError(f"concept source {source!r} is not allowed; choose one of "
                           f"{', '.join(SOURCES)}")


def paper_directory_named(directory: str | None = None) -> bool:
    """Whether the user named a folder for the paper's files (``directory``, else
    ``$IPTA_WORD_PAIRS_DIR``). A named folder is used or is an error, never replaced."""
    return bool(directory or os.environ.get(ENV_VAR))


def paper_directory_problem(directory: str | None = None) -> str | None:
    """``None`` if no folder was named or the named one holds the paper's 27 files with their
    pinned sha256; else what is wrong (which folder or file, and what to do), for the
    chapters' up-front checks. Reads 27 small files."""
    if not paper_directory_named(directory):
        return None
    try:
        load_paper_concepts(directory)
    except ConceptDataError as err:
        origin = "parameter 'word_pairs_dir'" if directory else f"${ENV_VAR}"
        return (f"the paper's word pairs named by {origin} cannot be used: {err}. Point it at "
                f"an unmodified copy of the 27 files of {PAPER_REPO}@{PAPER_COMMIT[:12]}, or "
                "leave it unset to use our embedded set")
    return None
