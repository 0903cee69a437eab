"""The committed plan sections match the plan, and every section the catalogue cites exists."""

import re
from pathlib import Path

import pytest

from app.rules.plan import PlanSection, blocks, derive_sections, load_sections, render_sections

ROOT = Path(__file__).resolve().parents[2]
PLAN = ROOT / "docs/jarjestamissuunnitelma.txt"
CATALOGUE = ROOT / "docs/CATALOGUE.md"
COMMITTED = ROOT / "rules/plan_sections.yaml"

# Citations in CATALOGUE.md that name no section of the plan, each with what it should say.
# When the catalogue is corrected, this test fails until the entry is removed. The revision
# of 2026-11-30 no longer cites `2.2.3 c` (it says 2.2.3 ostopalvelu c): none is known now.
KNOWN_CATALOGUE_ERRORS: dict[str, str] = {}

# A citation: a section number (never the catalogue's own `§4.1`, a date or a code such as
# 422), then a letter (`2.2.1 a`), a parenthesised qualifier (`2.4 (keskitetty a)`,
# `2.4 (ei-lakisääteinen)`) or a bare one with a letter range (`2.2.3 ostopalvelu a–e`).
_CITATION = re.compile(
    r"(?<![§\w.])(?P<section>LIITE \d+|\d(?:\.\d){1,2}|(?P<bare>\d))(?![\w.]*\d)"
    r"(?:\s+\((?P<qualified>[^()]+)\)"
    r"|\s+(?P<word>[a-zäö][a-zäö-]+(?: [a-zäö-]+)?) (?P<range>[a-z](?:–[a-z])?)(?!\w)"
    r"|\s+(?P<letter>[a-z])(?![\w-]))?"
)
_PARENTHESISED = re.compile(r"\((?:[^()]|\([^()]*\))*\)")
_BACKTICKED = re.compile(r"`([^`]+)`")
_BASIS_PROSE = re.compile(r"\bbasis (\d(?:\.\d){0,2})\b")


def _letters(span: str) -> list[str]:
    """The letters of `a` or of a range `a–e`."""
    first, _, last = span.partition("–")
    return [chr(code) for code in range(ord(first), ord(last or first) + 1)]


def citations_in(text: str, *, bare_numbers: bool) -> set[str]:
    """The section ids cited in a piece of catalogue text, in the plan's notation."""
    found: set[str] = set()
    for match in _CITATION.finditer(text):
        section = match["section"]
        if match["bare"] and not bare_numbers:
            continue  # "3 digits" is no citation; a bare chapter counts only where a basis is given
        if match["qualified"]:
            *words, last = match["qualified"].split(" ")
            if words and re.fullmatch(r"[a-z](?:–[a-z])?", last):
                found |= {f"{section} ({' '.join(words)} {x})" for x in _letters(last)}
            else:
                found.add(f"{section} ({match['qualified']})")
        elif match["word"]:
            found |= {f"{section} ({match['word']} {x})" for x in _letters(match["range"])}
        elif match["letter"]:
            found.add(f"{section} {match['letter']}")
        else:
            found.add(section)
    return found


def catalogue_citations(markdown: str) -> set[str]:
    """Every section cited in the catalogue: basis columns, parentheses, backticks, "basis N"."""
    found: set[str] = set()
    basis_column: int | None = None
    for line in markdown.splitlines():
        if not line.startswith("|"):
            basis_column = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if "basis" in cells:
            basis_column = cells.index("basis")
        elif basis_column is not None and basis_column < len(cells):
            found |= citations_in(cells[basis_column], bare_numbers=True)
    for group in _PARENTHESISED.findall(markdown):
        found |= citations_in(group[1:-1], bare_numbers=False)
    for span in _BACKTICKED.findall(markdown):
        if _CITATION.fullmatch(span):
            found |= citations_in(span, bare_numbers=True)
    found |= set(_BASIS_PROSE.findall(markdown))
    return found


def unresolved(cited: set[str], sections: dict[str, PlanSection]) -> set[str]:
    """The cited ids that are no section of the plan."""
    return cited - sections.keys()


@pytest.fixture(scope="module")
def derived() -> dict[str, PlanSection]:
    """The sections derived from the plan's text."""
    return derive_sections(PLAN.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def cited() -> set[str]:
    """The sections cited by the catalogue."""
    return catalogue_citations(CATALOGUE.read_text(encoding="utf-8"))


def test_committed_sections_are_what_the_plan_derives(derived: dict[str, PlanSection]) -> None:
    committed = load_sections(COMMITTED)
    assert list(committed) == list(derived), "ids or their order differ: regenerate the file"
    for section_id, section in derived.items():
        assert committed[section_id] == section, f"section {section_id} differs from the plan"
    assert render_sections(derived) == COMMITTED.read_text(encoding="utf-8"), "regenerate the file"


def test_the_repository_stands_on_its_own() -> None:
    """Nothing names a path outside the repository: the plan, catalogue and notes are in docs/."""
    assert all(path.resolve().is_relative_to(ROOT) and path.is_file() for path in (PLAN, CATALOGUE))
    outside = re.compile(r"\.\./(?:\.\./)*shared\b|\bshared/(?:seed|domain|notes)/|/work/")
    files = [ROOT / name for name in ("Makefile", "Dockerfile", "README.md", "pyproject.toml")]
    for folder in ("app", "tests", "bench", "rules", "docs", "migrations"):
        files += [p for p in (ROOT / folder).rglob("*") if p.suffix in {".py", ".md", ".yaml", ".html", ".lua", ".txt"}]
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line) and path != Path(__file__).resolve()
    ]
    assert found == []


def test_every_numbered_heading_of_the_plan_is_a_section(derived: dict[str, PlanSection]) -> None:
    numbered = [i for i in derived if re.fullmatch(r"\d(?:\.\d)*|LIITE \d", i)]
    assert numbered[:4] == ["1", "2", "2.1", "2.2"]
    assert {"2.6.3", "2.6.5", "5.7", "7.3", "LIITE 1", "LIITE 2"} <= set(numbered)
    assert "2.6.4" not in derived  # the plan itself skips from 2.6.3 to 2.6.5
    assert all(derived[i].title for i in derived)


def test_restarted_lists_are_qualified_by_their_sub_heading(derived: dict[str, PlanSection]) -> None:
    assert derived["2.2.2 (valtio a)"].title == "Työvoimapoliittinen lausunto"
    assert derived["2.2.2 (toinen työllisyysalue a)"].title == "Merityönvälitys"
    assert derived["2.2.3 (ostopalvelu e)"].title == "Muutosturvakoulutus"
    assert derived["2.4 (keskitetty b)"].title == "Palkkatukipäätökset"
    assert derived["2.4 (ostopalvelu b)"].title.startswith("Starttirahapäätöksen")
    assert derived["2.4 (ei-lakisääteinen)"].text.endswith("(esim. MääHoidan, WeLoveMetal).")
    assert "2.2.3 c" not in derived


def test_an_item_holds_only_its_own_text(derived: dict[str, PlanSection]) -> None:
    assert derived["2.1 f"].text.endswith("tuista ja korvauksista.")
    assert derived["2.2.2 b"].text.endswith("ohjaa asiakkaan keskitettyyn palveluun.")
    assert "asiakkuus säilyy kunnan omavalmentajalla" in derived["2.2.3 (ostopalvelu c)"].text


def test_the_catalogue_is_read_for_citations(cited: set[str]) -> None:
    # A guard that the extraction itself still sees the catalogue's kinds of citation.
    assert {"1", "2.1", "5.1", "2.2.1 a", "2.2.2 (valtio a)", "2.4 (ei-lakisääteinen)"} <= cited
    assert {f"2.2.3 (ostopalvelu {x})" for x in "abcde"} <= cited
    assert {"LIITE 2", "7.3", "2.5.1", "2.6.3"} <= cited
    assert not {"422", "3", "4.1", "1.1"} & cited


def test_every_section_the_catalogue_cites_exists(derived: dict[str, PlanSection], cited: set[str]) -> None:
    assert unresolved(cited, derived) == set(KNOWN_CATALOGUE_ERRORS)


def test_a_missing_section_is_noticed(derived: dict[str, PlanSection], cited: set[str]) -> None:
    without = {i: s for i, s in derived.items() if i != "2.2.3 (ostopalvelu c)"}
    assert "2.2.3 (ostopalvelu c)" in unresolved(cited, without)


def test_the_plans_lists_stay_lists(derived: dict[str, PlanSection]) -> None:
    # The plan's bullets (•, o, -) used to run into the paragraph as " o " and " • ".
    inline = [i for i, s in derived.items() if re.search(r" [•o-] [A-ZÄÖa-zäö]", s.text)]
    assert inline == []
    assert blocks(derived["1"].text)[1] == (
        "ul",
        [
            "Hailuodon kunta,",
            "Iin kunta,",
            "Kempeleen kunta,",
            "Limingan kunta,",
            "Lumijoen kunta,",
            "Muhoksen kunta,",
            "Oulun kaupunki,",
            "Pudasjärven kaupunki,",
            "Tyrnävän kunta,",
            "Utajärven kunta ja",
            "Vaalan kunta.",
        ],
    )
    kinds = blocks(derived["2.2.6"].text)
    assert kinds[0] == ("p", [kinds[0][1][0]])
    assert kinds[0][1][0].endswith("maahanmuuttajille:")
    assert kinds[1] == (
        "ul",
        [
            "kotoutumislain mukainen osaamisen ja kotoutumisen palvelutarpeen arviointi;",
            "kotoutumissuunnitelma tai monialainen kotoutumissuunnitelma; sekä",
            "kotoutuja-asiakkaan omaehtoisen opiskelun palvelut.",
        ],
    )
    # An item's wrapped lines are its own; the paragraph after its sentence is not.
    assert ("ul", ["Kielitestaukset."]) in kinds
    assert "Työnhakija-asiakkaana olevien kotoutujien monikielinen yhteiskuntaorientaatio." in kinds[3][1]


def test_a_sections_lettered_items_are_a_list_that_keeps_its_letters(derived: dict[str, PlanSection]) -> None:
    shown = blocks(derived["2.1"].text)
    assert [kind for kind, _ in shown[:4]] == ["p", "lettered", "p", "ul"]
    assert shown[1][1][0] == "a. avoimista työpaikoista ja työnhausta;"
    assert [item[:2] for item in shown[1][1]] == ["a.", "b.", "c.", "d.", "e.", "f."]
    # An item cited on its own is one paragraph, without its letter.
    assert blocks(derived["2.1 a"].text) == [("p", ["avoimista työpaikoista ja työnhausta;"])]
