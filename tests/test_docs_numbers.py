"""The repository carries its own copy of every published number it cites."""

from __future__ import annotations

import re

from hrda_lib.paths import REPO_ROOT
from hrda_lib.reproduction import tables

PAGE = REPO_ROOT / "docs" / "paper_numbers.md"


def _numbers(text: str) -> set[str]:
    return set(re.findall(r"\d+\.\d+", text))


def test_every_published_number_the_tables_cite_is_on_the_page() -> None:
    page = _numbers(PAGE.read_text())
    cited = {f"{v:.1f}" for v in tables.PUBLISHED["published_mIoU"]}
    cited.add(f"{tables.PUBLISHED_CHECKPOINT[0]:.2f}")
    for text in (*tables.PUBLISHED_UDA_METHODS.values(), *tables.PUBLISHED_DG.values()):
        cited |= _numbers(text)
    assert cited - page == set()


def test_the_notebooks_cite_the_page_where_it_is() -> None:
    for notebook in (REPO_ROOT / "notebooks").glob("*.ipynb"):
        for match in re.finditer(r"[\w/]*paper_numbers\.md", notebook.read_text()):
            assert (REPO_ROOT / match.group()).is_file(), (notebook.name, match.group())
