"""Text competitions for make_competitions.py: labelled free text taken from Debian packages.

Three corpora that Debian ships, each labelled by where its text sits in the package:

- `fortunes` (the fortune-mod cookie files): a fortune's topic is the file it is in;
- `wordnet-base` (WordNet 3.0): a noun synset's gloss and its lexicographer file (animal,
  plant, artifact, ...), with counts of its relations beside the text;
- `dict-foldoc` (the Free On-line Dictionary of Computing, dictd format): an entry's subject
  is the `<tag>` its definition opens with (taken out of the text).

Each package is fetched once with `apt-get download NAME=VERSION` into CACHE/debs and checked
against a pinned SHA-256; the `.deb` (an `ar` archive holding `data.tar.xz`) is read with the
standard library only. `table(item, cache)` returns (header, rows) as `Sources.table` does, so
the competitions are built by make_competitions.py's own `build` and `build_shaped`.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import subprocess
import sys
import tarfile
from pathlib import Path

# Pinned Debian packages (bookworm): name -> (version, filename, sha256)
DEBS = {
    "fortunes": (
        "1:1.99.1-7.3",
        "fortunes_1%3a1.99.1-7.3_all.deb",
        "41d0551dc0ff52f875a2ecef7c39da2f672ab468c37e170119f7e0245a9d63c5",
    ),
    "wordnet-base": (
        "1:3.0-37",
        "wordnet-base_1%3a3.0-37_all.deb",
        "61060d960f9ada8fa120872312eccd3ecebfbab8c4579e4f5a74e1cf67620752",
    ),
    "dict-foldoc": (
        "20230119-1",
        "dict-foldoc_20230119-1_all.deb",
        "745cbedb55c2da609cc88ee0284e9d11a67a11ae3709daf7bad0e895ac3294c3",
    ),
}


def fetch_deb(name: str, cache: Path) -> Path:
    version, filename, sha = DEBS[name]
    debs = cache / "debs"
    path = debs / filename
    if not path.is_file():
        debs.mkdir(parents=True, exist_ok=True)
        cmd = ["apt-get", "download", "-q", f"{name}={version}"]
        print("+", " ".join(cmd), f"(in {debs})", file=sys.stderr)
        subprocess.run(cmd, check=True, cwd=debs)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != sha:
        raise SystemExit(f"{path}: sha256 {digest} does not match the pinned {sha}")
    return path


def deb_members(deb: Path, wanted) -> dict[str, bytes]:
    """{path: bytes} of the regular files of the package's data archive for which
    `wanted(path)` holds (paths without the leading `./`)."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise SystemExit(f"{deb}: not an ar archive")
    at, payload = 8, None
    while at + 60 <= len(data):
        header = data[at : at + 60]
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        body = data[at + 60 : at + 60 + size]
        if name.startswith("data.tar"):
            payload = body
            break
        at += 60 + size + (size % 2)
    if payload is None:
        raise SystemExit(f"{deb}: no data.tar member")
    out = {}
    with tarfile.open(fileobj=io.BytesIO(payload)) as tar:
        for member in tar.getmembers():
            path = member.name.removeprefix("./")
            if member.isfile() and wanted(path):
                out[path] = tar.extractfile(member).read()
    return out


# --------------------------------------------------------------------------------------
# fortunes: text -> the cookie file it is in
# --------------------------------------------------------------------------------------
FORTUNE_DIR = "usr/share/games/fortunes/"
# Topics with a few hundred fortunes each and a subject of their own.
FORTUNE_TOPICS = [
    "art",
    "computers",
    "education",
    "food",
    "law",
    "linux",
    "love",
    "medicine",
    "politics",
    "science",
    "songs-poems",
    "sports",
    "startrek",
    "work",
]


def fortunes_table(cache: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of `fortune,topic`: each fortune of the chosen topics, without the ones
    that appear in more than one file (their topic is not one thing)."""
    files = deb_members(
        fetch_deb("fortunes", cache),
        lambda p: p.startswith(FORTUNE_DIR) and p[len(FORTUNE_DIR) :] in FORTUNE_TOPICS,
    )
    by_text: dict[str, set[str]] = {}
    for path, data in sorted(files.items()):
        topic = path[len(FORTUNE_DIR) :]
        for text in data.decode("utf-8").split("\n%\n"):
            text = text.strip("\n%").rstrip()
            if text.strip():
                by_text.setdefault(text, set()).add(topic)
    rows = [[text, topics.pop()] for text, topics in by_text.items() if len(topics) == 1]
    rows.sort(key=lambda r: (r[1], r[0]))
    return ["fortune", "topic"], rows


# --------------------------------------------------------------------------------------
# WordNet: a noun synset's gloss and relation counts -> its lexicographer file
# --------------------------------------------------------------------------------------
# The lexicographer file numbers of WordNet 3.0 (wndb(5WN), lexnames(5WN)) used here.
WORDNET_CATEGORIES = {
    "04": "act",
    "05": "animal",
    "06": "artifact",
    "08": "body",
    "10": "communication",
    "13": "food",
    "15": "location",
    "18": "person",
    "20": "plant",
    "27": "substance",
}
WORDNET_HEADER = [
    "headword",
    "gloss",
    "synonyms",
    "relations",
    "hypernyms",
    "hyponyms",
    "instance_of",
    "part_links",
    "derived_links",
    "category",
]


def wordnet_table(cache: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of every noun synset of the chosen categories: the first lemma, the gloss
    (definition and examples), counts of its synonyms and pointers by kind, its category."""
    path = "usr/share/wordnet/data.noun"
    data = deb_members(fetch_deb("wordnet-base", cache), lambda p: p == path)[path]
    rows = []
    for line in data.decode("utf-8").splitlines():
        if line.startswith("  ") or " | " not in line:
            continue  # the licence header
        fields, gloss = line.split(" | ", 1)
        parts = fields.split()
        category = WORDNET_CATEGORIES.get(parts[1])
        if category is None:
            continue
        words = int(parts[3], 16)
        lemmas = parts[4 : 4 + 2 * words : 2]
        at = 4 + 2 * words
        pointers = int(parts[at])
        kinds = parts[at + 1 : at + 1 + 4 * pointers : 4]

        def count(*symbols, kinds=kinds):
            return str(sum(k in symbols for k in kinds))

        headword = re.sub(r"\(.*\)$", "", lemmas[0]).replace("_", " ")
        rows.append(
            [
                headword,
                gloss.strip(),
                str(words),
                str(pointers),
                count("@", "@i"),
                count("~", "~i"),
                count("@i"),
                count("#m", "#s", "#p", "%m", "%s", "%p"),
                count("+"),
                category,
            ]
        )
    return WORDNET_HEADER, rows


# --------------------------------------------------------------------------------------
# FOLDOC: an entry's definition -> its subject tag
# --------------------------------------------------------------------------------------
FOLDOC_SUBJECTS = [
    "language",
    "networking",
    "programming",
    "jargon",
    "operating system",
    "company",
    "hardware",
    "communications",
]
FOLDOC_HEADER = ["term", "definition", "aliases", "cross_references", "lines", "year", "subject"]
TAG = re.compile(r"^\s*<([^>]+)>\s*")
DATE = re.compile(r"\((\d{4})-\d{2}-\d{2}\)\s*$")


def foldoc_table(cache: Path) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the entries whose definition opens with one of the chosen subjects
    (its first, when it lists several): the term, the definition without the tag and the
    closing date, counts of aliases, cross-references and lines, the year it was last edited."""
    path = "usr/share/dictd/foldoc.dict.dz"
    packed = deb_members(fetch_deb("dict-foldoc", cache), lambda p: p == path)[path]
    text = gzip.decompress(packed).decode("utf-8")
    rows = []
    for block in re.split(r"\n\n(?=\S)", text):
        lines = block.strip("\n").split("\n")
        names = [ln for ln in lines if ln and not ln[0].isspace()]
        body = "\n".join(ln.strip() for ln in lines if ln[:1].isspace()).strip()
        tag = TAG.match(body)
        if not names or not tag:
            continue
        subject = tag.group(1).split(",")[0].strip()
        if subject not in FOLDOC_SUBJECTS:
            continue
        body = body[tag.end() :]
        date = DATE.search(body)
        year = date.group(1) if date else ""
        body = body[: date.start()].strip() if date else body
        if not body:
            continue
        rows.append(
            [
                names[0],
                body,
                str(len(names) - 1),
                str(body.count("{")),
                str(body.count("\n") + 1),
                year,
                subject,
            ]
        )
    return FOLDOC_HEADER, rows


TABLES = {"fortunes": fortunes_table, "wordnet-nouns": wordnet_table, "foldoc": foldoc_table}


def table(item: str, cache: Path) -> tuple[list[str], list[list[str]]]:
    return TABLES[item](cache)


# --------------------------------------------------------------------------------------
# The competitions (specs in make_competitions.py's two forms)
# --------------------------------------------------------------------------------------
# `build` specs: one label column. `foldoc-subjects` is the one kept aside: measured, never
# looked at while choosing the baseline's text features.
SPECS = [
    dict(
        slug="fortune-topics",
        source=("debian", "fortunes"),
        title="Fortune Cookie Topics",
        task="multiclass",
        metric="macro_f1",
        target="topic",
        keep=["fortune"],
        rows_word="fortunes",
        overview=(
            "The Unix `fortune` program prints a random adage, quotation or joke from files "
            "sorted by topic. Given only the text of a fortune, predict the file it came from: "
            "art, computers, education, food, law, linux, love, medicine, politics, science, "
            "songs-poems, sports, startrek or work. The small topics matter as much as the "
            "large ones."
        ),
        task_text="predict the `topic` of each fortune in the test set",
        columns={
            "fortune": "the text of the fortune, with its line breaks and attribution",
            "topic": "the fortune file it belongs to (the target)",
        },
    ),
    dict(
        slug="foldoc-subjects",
        source=("debian", "foldoc"),
        title="Computing Dictionary Subjects",
        task="multiclass",
        metric="accuracy",
        target="subject",
        keep=["term", "definition", "aliases", "cross_references", "lines", "year"],
        rows_word="entries",
        overview=(
            "Each entry of the Free On-line Dictionary of Computing is filed under a subject. "
            "From an entry's term, its definition and a few facts about it, predict its "
            "subject: communications, company, hardware, jargon, language, networking, "
            "operating system or programming."
        ),
        task_text="predict the `subject` of each dictionary entry in the test set",
        columns={
            "term": "the headword",
            "definition": "the definition, cross-references in {braces}",
            "aliases": "how many other names the entry lists",
            "cross_references": "how many cross-references the definition has",
            "lines": "the definition's length in lines",
            "year": "the year the entry was last edited (sometimes missing)",
            "subject": "the entry's subject (the target)",
        },
    ),
]

# `build_shaped` specs: one probability column per class.
SHAPED_SPECS = [
    dict(
        slug="wordnet-noun-probabilities",
        source=("debian", "wordnet-nouns"),
        title="WordNet Noun Categories",
        shape="class_probabilities",
        metric="multiclass_log_loss",
        targets=["category"],
        keep=WORDNET_HEADER[:-1],
        rows=6000,
        evaluation=(
            "Submissions are evaluated using the **multi-class logarithmic loss**. Each synset "
            "has one true category; for each you submit a predicted probability per category "
            "(act, animal, artifact, body, communication, food, location, person, plant, "
            "substance), which are rescaled to sum to 1."
        ),
        overview=(
            "WordNet groups English nouns into sets of synonyms, each with a short gloss, "
            "filed by lexicographers under broad categories. From a synset's first word, its "
            "gloss and counts of its links to other synsets, predict the probability of each "
            "category."
        ),
    ),
]
