"""The README and docs/: links resolve, the headline numbers are those of the committed CSVs, the
README's first screen holds the two commands, and no tracked file names a path of one machine."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from hrda_lib.paths import REPO_ROOT

README = REPO_ROOT / "README.md"
PAGES = [README, *sorted((REPO_ROOT / "docs").glob("*.md"))]
RESULTS = REPO_ROOT / "results"
NUMBER = r"([+-]?\d+(?:\.\d+)?)"


# -- links --------------------------------------------------------------------------------------


def _prose(text: str) -> str:
    """`text` without fenced code blocks and inline code (neither holds links or headings)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headings: lower case, punctuation dropped, spaces to '-'."""
    anchors: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *$", _prose(page.read_text()), flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        unique, n = slug, 0
        while unique in anchors:  # GitHub numbers repeated headings: slug-1, slug-2, ...
            n += 1
            unique = f"{slug}-{n}"
        anchors.add(unique)
    return anchors


def _links(page: Path) -> list[str]:
    return re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", _prose(page.read_text()))


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_relative_link_resolves(page: Path) -> None:
    broken = []
    for link in _links(page):
        if re.match(r"[a-z]+:", link):  # https:, mailto:
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists():
            broken.append(f"{link}: no file {target}")
        elif anchor and target.suffix == ".md" and anchor not in _anchors(target):
            broken.append(f"{link}: no heading with anchor #{anchor} in {target.name}")
    assert not broken, "\n".join(broken)


def test_the_readme_links_every_docs_page() -> None:
    linked = {(README.parent / link.partition("#")[0]).resolve() for link in _links(README)}
    assert set(PAGES[1:]) <= linked


# -- the README's headline ----------------------------------------------------------------------


def _headline(start: str) -> str:
    """The README's headline bullet that starts with `start` (after `- **`)."""
    section = README.read_text().split("## Headline", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith(f"- **{start}")]
    assert len(lines) == 1, start
    return lines[0]


def _shown(pattern: str, line: str) -> list[str]:
    match = re.search(pattern, line)
    assert match, (pattern, line)
    return list(match.groups())


def _as_shown(value: float, shown: str) -> None:
    """`value`, rounded to the decimals `shown` has, is the number shown."""
    decimals = len(shown.partition(".")[2])
    assert round(value, decimals) == pytest.approx(float(shown), abs=1e-9), (value, shown)


def _claim(name: str) -> pd.Series:
    """The row of claims.csv for `name` (07 lists a claim once per table it belongs to)."""
    claims = pd.read_csv(RESULTS / "07_figures_tables" / "claims.csv")
    rows = claims[claims["claim"] == name]
    assert len(rows) >= 1 and len(rows.drop_duplicates()) == 1, name
    return rows.iloc[0]


def _per_seed(table: pd.DataFrame, row: str, base: str, key: str, value: str) -> pd.Series:
    """Per seed: `value` of the row `row` minus that of `base` (rows named by column `key`)."""
    wide = table.pivot_table(index="seed", columns=key, values=value)
    return (wide[row] - wide[base]).dropna()


def test_headline_hrda_over_daformer_is_the_csvs() -> None:
    line = _headline("HRDA − DAFormer (LR data)")
    mean, std = _shown(rf"{NUMBER} ± {NUMBER} mIoU", line)
    published = _shown(rf"the paper: {NUMBER}\)", line)[0]
    long_mean, long_std = _shown(rf"\*\*{NUMBER} ± {NUMBER}\*\* at 6000 iterations", line)
    claim = _claim("HRDA − DAFormer (LR data)")
    _as_shown(claim["ours: Δ mIoU"], mean)
    _as_shown(claim["ours: paired std"], std)
    _as_shown(claim["published: Δ mIoU"], published)
    assert "every seed positive" in line and claim["ours: smallest per seed"] > 0
    seeds = pd.read_csv(RESULTS / "06_full_training" / "seed_differences.csv").set_index("seed")
    _as_shown(float(seeds.loc["mean", "difference"]), mean)
    _as_shown(float(seeds.loc["std", "difference"]), std)
    schedules = pd.read_csv(RESULTS / "07_figures_tables" / "schedules.csv")
    at_6000 = schedules[schedules["iters"] == 6000]
    gains = _per_seed(at_6000, "hrda", "daformer_lr", "key", "miou_final")
    assert sorted(gains.index) == [0, 1, 2]
    _as_shown(gains.mean(), long_mean)
    _as_shown(gains.std(ddof=1), long_std)


def test_headline_what_does_not_reproduce_is_the_csvs() -> None:
    line = _headline("Does not reproduce")
    mic, mic_std, mic_paper = _shown(
        rf"MIC\(HRDA\) − HRDA {NUMBER} ± {NUMBER} \(every seed below; the paper: {NUMBER}\)", line
    )
    claim = _claim("MIC(HRDA) − HRDA")
    _as_shown(claim["ours: Δ mIoU"], mic)
    _as_shown(claim["ours: paired std"], mic_std)
    _as_shown(claim["published: Δ mIoU"], mic_paper)
    main = pd.read_csv(RESULTS / "07_figures_tables" / "main_comparison.csv")
    mic_seeds = _per_seed(main, "mic_hrda", "hrda", "row", "miou")
    assert len(mic_seeds) == 3 and (mic_seeds < 0).all()  # every seed below
    table5, table5_std = _shown(rf"DAFormer HR0\.75 {NUMBER} ± {NUMBER} \(two seeds of three", line)
    claim = _claim("HRDA LR0.75 + HR0.375 − DAFormer HR0.75 (Table 5)")
    _as_shown(claim["ours: Δ mIoU"], table5)
    _as_shown(claim["ours: paired std"], table5_std)
    crops = pd.read_csv(RESULTS / "04_ablation_crop_sizes" / "metrics.csv")
    below = _per_seed(crops, "hrda_context0.75_detail0.375", "daformer_hr0.75", "key", "mIoU") < 0
    assert (below.sum(), len(below)) == (2, 3)


def test_headline_classes_not_learned_are_the_csvs() -> None:
    line = _headline("Not learned")
    main = pd.read_csv(RESULTS / "07_figures_tables" / "main_comparison.csv")
    assert "traffic light, traffic sign and bicycle at 0 IoU in every row" in line
    assert (main[["traffic light", "traffic sign", "bicycle"]] == 0).all().all()
    low, high = _shown(r"sidewalk at (\d+)-(\d+) IoU in every UDA row", line)
    uda = main[main["row"] != "source_only"]["sidewalk"]
    assert (round(uda.min()), round(uda.max())) == (int(low), int(high))


# -- a short README -----------------------------------------------------------------------------


def test_the_readme_is_short_and_its_first_screen_holds_the_two_commands() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) < 150
    first_screen = "\n".join(lines[:60])
    assert "make demo   #" in first_screen and "make test   #" in first_screen
    assert "## Headline" in first_screen and "Does not reproduce" in first_screen


def test_the_readme_times_are_those_of_docs_reproduce() -> None:
    """The README's one-line timings repeat docs/reproduce.md's measured ones (re-time both)."""
    readme, page = README.read_text(), (REPO_ROOT / "docs" / "reproduce.md").read_text()
    demo = _shown(r"setup\s+included: (\d+\.\d+) minutes", readme)[0]
    assert re.search(rf"time make demo`, at commit\s+\w+\):\s+{re.escape(demo)}\s+minutes", page)
    tests, minutes = _shown(
        r"runs the (\d+) tests .*?: (\d+\.\d+) minutes", readme.replace("\n", " ")
    )
    assert f"({tests} tests: {minutes} minutes" in page


# -- no paths of one machine --------------------------------------------------------------------

# Absolute paths that name one machine's folders (built so that this file does not match itself),
# and the repository's own location here.
MACHINE_PATH = re.compile(
    r"(?<![\w.-])/(?:work|tmp|root|home)/"
    + rf"|(?<![\w.~$/-]){re.escape(str(REPO_ROOT))}(?![\w.-])"
)


def _repository_text_files() -> list[Path]:
    """Tracked files and new ones not ignored, that exist and are text."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=REPO_ROOT,
            capture_output=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = []
    for name in sorted(set(listed.decode().split("\0")) - {""}):
        path = REPO_ROOT / name
        if path.is_file() and not path.is_symlink():
            files.append(path)
    return files


def test_no_file_names_a_path_of_one_machine() -> None:
    found = []
    for path in _repository_text_files():
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        try:
            text = data.decode()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{path.relative_to(REPO_ROOT)}:{number}: {line.strip()[:120]}")
    assert not found, "absolute paths of one machine (write them relative):\n" + "\n".join(found)
