"""The plan's citable sections, derived from its text in the catalogue's citation notation.

A numbered heading (`2.2.3`, `LIITE 2`) is a section whose text runs to the next heading.
A lettered item (`a.` … `m.`) is a section of its own: `2.2.1 d`. Some sections hold several
lists that restart at "a."; the first is cited plainly, a later one by a qualifier word taken
from its sub-heading (`2.2.3 (ostopalvelu c)`), and an unlettered list after lettered ones by
the qualifier alone (`2.4 (ei-lakisääteinen)`).

A section's text keeps the plan's lists: one block a line, a paragraph or a list item. An item
of a bulleted list (•, o or - in the plan) starts with "- ", a lettered one with its letter
("a. "); `blocks` reads them back for a page to show as lists.
"""

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

# A restarted list is cited by the first qualifier whose phrase occurs in its sub-heading.
QUALIFIERS: tuple[tuple[str, str], ...] = (
    ("valtion toimesta", "valtio"),
    ("toisen työllisyysalueen toimesta", "toinen työllisyysalue"),
    ("keskitetään vastuukuntaan", "keskitetty"),
    ("ostopalveluna", "ostopalvelu"),
    ("ei-lakisääteisiä", "ei-lakisääteinen"),
)

# Heading numbers have one-digit parts, so "4. moduuliin" or a year never reads as a heading.
_HEADING = re.compile(r"^(?:(?P<number>\d(?:\.\d){0,2})|(?P<appendix>LIITE \d)\.)\s+(?P<title>[A-ZÅÄÖ].*)$")
_ITEM = re.compile(r"^(?P<letter>[a-z])\.\s+\S")
_SENTENCE_END = (".", ":", ";", "!", "?")
# An item of a run-on list ends its clause with ";" (the last but one with "; sekä").
_RUN_ON = re.compile(r";(?:\s+(?:sekä|ja|tai))?$")
# What a title sheds at its end: punctuation and a list's closing conjunction.
_TITLE_TAIL = re.compile(r"[\s.:;,]*(?:\s(?:sekä|ja|tai))?[\s.:;,]*$")
# A line-end hyphen joins a compound ("Isku-" + "tiimiä") unless a conjunction follows
# ("radio-, some-" + "tai televisiomainonta").
_CONJUNCTIONS = frozenset({"ja", "tai", "sekä", "eli"})
# A bulleted list item's line: the plan's bullets are •, o (the second level) and -.
_BULLET = re.compile(r"^[•o-]\s+(?=\S)")
# A lettered item within a section's text, as `_text` writes it.
_LETTERED = re.compile(r"^[a-z]\.\s")


@dataclass(frozen=True)
class PlanSection:
    """One citable part of the plan: a numbered section or a list item."""

    id: str
    title: str
    text: str


@dataclass(frozen=True)
class _Heading:
    """A numbered heading and the lines of its own body."""

    id: str
    key: tuple[int, ...]
    title: str
    body: list[str]


def derive_sections(text: str) -> dict[str, PlanSection]:
    """Derive every numbered section and list item of the plan, keyed by citation id, in plan order."""
    sections: dict[str, PlanSection] = {}
    for heading in _headings(text):
        lettered = frozenset(index for index, _ in _item_starts(heading.body))
        parts = [PlanSection(heading.id, heading.title, _text(heading.body, lettered))]
        parts += _list_sections(heading.id, heading.body)
        for part in parts:
            if part.id in sections:
                raise ValueError(f"the plan yields section {part.id!r} twice")
            sections[part.id] = part
    return sections


def load_sections(path: Path | str) -> dict[str, PlanSection]:
    """Read the committed sections file (a YAML list of {id, title, text}), strictly."""
    path = Path(path)
    rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise ValueError(f"{path}: expected a list of sections")
    sections: dict[str, PlanSection] = {}
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or set(row) != {"id", "title", "text"}:
            raise ValueError(f"{path}: entry {index} must have exactly id, title and text")
        if not all(isinstance(row[key], str) for key in ("id", "title", "text")):
            raise ValueError(f"{path}: entry {index} ({row.get('id')!r}) has a value that is not text")
        if row["id"] in sections:
            raise ValueError(f"{path}: section {row['id']!r} appears twice")
        sections[row["id"]] = PlanSection(row["id"], row["title"], row["text"])
    return sections


def render_sections(sections: dict[str, PlanSection]) -> str:
    """Render sections as the committed YAML file, header comment included."""
    header = (
        "# The plan's citable sections: derived from docs/jarjestamissuunnitelma.txt\n"
        "# by app/rules/plan.py (derive_sections), in plan order, ids in the notation CATALOGUE.md cites.\n"
        "# Do not edit by hand: tests/rules/test_plan_sections.py re-derives it and fails on any difference.\n"
        '# Regenerate: python -c "from pathlib import Path; from app.rules.plan import derive_sections,\n'
        "#   render_sections; p = Path('docs/jarjestamissuunnitelma.txt');\n"
        "#   Path('rules/plan_sections.yaml').write_text(render_sections(derive_sections(\n"
        "#   p.read_text(encoding='utf-8'))), encoding='utf-8')\"\n"
    )
    rows = [{"id": s.id, "title": s.title, "text": _Folded(s.text)} for s in sections.values()]
    body = yaml.dump(rows, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=100)
    return header + body.replace("\n- id:", "\n\n- id:")


class _Folded(str):
    """Text that the sections file writes as a folded block, to read like a paragraph."""


def _represent_folded(dumper: yaml.representer.BaseRepresenter, text: str) -> yaml.ScalarNode:
    """Represent text as a folded block scalar."""
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=">")


class _Dumper(yaml.SafeDumper):
    """A safe dumper that writes `_Folded` text as a folded block scalar."""

    yaml_representers = {**yaml.SafeDumper.yaml_representers, _Folded: _represent_folded}


def _headings(text: str) -> Iterator[_Heading]:
    """Split the plan into numbered headings, each with the stripped non-blank lines of its body."""
    current: _Heading | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        match = _HEADING.match(line)
        heading = _heading(match) if match else None
        if heading is not None and _follows(heading, current):
            if current is not None:
                yield current
            current = heading
        elif current is not None:
            current.body.append(line)
    if current is not None:
        yield current


def _heading(match: re.Match[str]) -> _Heading:
    """Build a heading from a matched heading line; appendices sort after every chapter."""
    title = _TITLE_TAIL.sub("", match["title"])
    if match["appendix"]:
        return _Heading(match["appendix"], (100 + int(match["appendix"].split()[1]),), title, [])
    key = tuple(int(part) for part in match["number"].split("."))
    return _Heading(match["number"], key, title, [])


def _follows(heading: _Heading, previous: _Heading | None) -> bool:
    """Whether a heading-like line is the next heading in order (a sibling, child or next chapter)."""
    if previous is None:
        return heading.key == (1,)
    key, last = heading.key, previous.key
    return key > last and (key[0] >= 100 or (key[0] <= last[0] + 1 and len(key) <= len(last) + 1))


def _list_sections(section_id: str, body: list[str]) -> list[PlanSection]:
    """The lettered items of a section body, and an unlettered list that follows them."""
    lists: list[list[tuple[int, str]]] = []
    for index, letter in _item_starts(body):
        if letter == "a":
            lists.append([])
        lists[-1].append((index, letter))
    if not lists:
        return []

    # Each list ends where the next list's sub-heading begins; the last one where the
    # sub-heading of an unlettered list begins, or at the end of the section.
    intros = [_intro_start(body, group[0][0]) for group in lists[1:]]
    trailing = _trailing_intro(body, lists[-1][-1][0])
    ends = [*intros, len(body) if trailing is None else trailing]

    sections: list[PlanSection] = []
    for number, (group, end) in enumerate(zip(lists, ends, strict=True)):
        qualifier = _qualifier(body[intros[number - 1] : group[0][0]]) if number else None
        starts = [index for index, _ in group]
        bounds = list(zip(starts, [*starts[1:], end], strict=True))
        if len(bounds) > 1 and all(_RUN_ON.search(body[stop - 1]) for _, stop in bounds[:-1]):
            # A run-on list ("annetaan: a. …; b. …; … f. … ."): the last item ends with its sentence.
            start, stop = bounds[-1]
            bounds[-1] = (start, next(i + 1 for i in range(start, stop) if body[i].endswith(".")))
        for (start, stop), (_, letter) in zip(bounds, group, strict=True):
            item_id = f"{section_id} ({qualifier} {letter})" if qualifier else f"{section_id} {letter}"
            lines = [body[start][2:].strip(), *body[start + 1 : stop]]
            sections.append(PlanSection(item_id, _item_title(lines), _text(lines)))

    if trailing is not None:
        lines = body[trailing:]
        intro = lines[: next(i for i, line in enumerate(lines) if line.endswith(":")) + 1]
        title = _TITLE_TAIL.sub("", _join(intro))
        sections.append(PlanSection(f"{section_id} ({_qualifier(intro)})", title, _text(lines)))
    return sections


def _item_starts(body: list[str]) -> list[tuple[int, str]]:
    """The lines that open a list item, with their letter: "a." or the previous item's letter + 1."""
    starts: list[tuple[int, str]] = []
    previous = ""
    for index, line in enumerate(body):
        match = _ITEM.match(line)
        if match and (match["letter"] == "a" or (previous and ord(match["letter"]) == ord(previous) + 1)):
            starts.append((index, match["letter"]))
            previous = match["letter"]
    return starts


def _intro_start(body: list[str], first_item: int) -> int:
    """Where the sub-heading sentence (ending with ':') just before a restarted list begins."""
    if not body[first_item - 1].endswith(":"):
        raise ValueError(f"restarted list at {body[first_item]!r} has no sub-heading ending with ':'")
    start = first_item - 1
    while start > 0 and not body[start - 1].endswith(_SENTENCE_END):
        start -= 1
    return start


def _trailing_intro(body: list[str], last_item: int) -> int | None:
    """Where the sub-heading of an unlettered list after the last lettered item begins, if any."""
    for index in range(last_item + 1, len(body) - 1):
        if body[index].endswith(":") and not _ITEM.match(body[index + 1]):
            start = index
            while start > last_item + 1 and not body[start - 1].endswith(_SENTENCE_END):
                start -= 1
            # A sentence that began on the item's own line is part of the item.
            if body[start - 1].endswith(_SENTENCE_END):
                return start
    return None


def _qualifier(intro: list[str]) -> str:
    """The qualifier word of a restarted list, read from its sub-heading."""
    heading = _join(intro).lower()
    for phrase, word in QUALIFIERS:
        if phrase in heading:
            return word
    raise ValueError(f"no qualifier for the restarted list under {_join(intro)!r}: extend QUALIFIERS")


def _item_title(lines: list[str]) -> str:
    """An item's first line, continued while a parenthesis it opened is still open."""
    title = lines[0]
    for line in lines[1:]:
        if title.count("(") <= title.count(")"):
            break
        title = _join([title, line])
    return _TITLE_TAIL.sub("", title)


def _join(lines: list[str]) -> str:
    """Join wrapped lines into one paragraph with normalised whitespace."""
    text = ""
    for line in lines:
        words = line.split()
        if not words:
            continue
        glue = "" if text.endswith("-") and words[0] not in _CONJUNCTIONS else " "
        text = f"{text}{glue}{' '.join(words)}" if text else " ".join(words)
    return text


def _text(lines: list[str], lettered: frozenset[int] = frozenset()) -> str:
    """A section's lines as its text: paragraphs and list items, one a line.

    A bullet, or a line in `lettered`, opens an item; the lines after it are its own until
    its sentence ends, and what follows then is a paragraph again. A paragraph runs on until
    an item opens: the plan's text keeps no blank lines between paragraphs to split at.
    """
    blocks: list[tuple[bool, list[str]]] = []  # (is an item, its lines)
    for index, line in enumerate(lines):
        bullet = _BULLET.match(line)
        if bullet:
            blocks.append((True, [f"- {line[bullet.end() :]}"]))
        elif index in lettered:
            blocks.append((True, [line]))
        elif blocks and not (blocks[-1][0] and _join(blocks[-1][1]).endswith(_SENTENCE_END)):
            blocks[-1][1].append(line)
        else:
            blocks.append((False, [line]))
    return "\n".join(_join(block) for _, block in blocks)


def blocks(text: str) -> list[tuple[str, list[str]]]:
    """A section's text as blocks to show: ("p", [paragraph]), ("ul", [items]) or ("lettered", [items]).

    Bulleted items lose their "- "; lettered ones keep their letter, as the plan cites them.
    """
    shown: list[tuple[str, list[str]]] = []
    for line in text.split("\n"):
        kind = "ul" if line.startswith("- ") else "lettered" if _LETTERED.match(line) else "p"
        item = line[2:] if kind == "ul" else line
        if kind != "p" and shown and shown[-1][0] == kind:
            shown[-1][1].append(item)
        else:
            shown.append((kind, [item]))
    return shown
