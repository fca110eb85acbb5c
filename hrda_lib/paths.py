"""Where things live: paths derived from the package's own location, overridable by env vars.

`HRDA_DATA` (datasets), `HRDA_RESULTS` (outputs), `HRDA_SCRATCH` (where a notebook run by hand
writes), `HRDA_GOLDEN` (the official-code fixtures).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT: Path = Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """Root of the datasets in their official layouts (`data/cityscapes`, `data/gta`, ...)."""
    return Path(os.environ.get("HRDA_DATA", REPO_ROOT / "data"))


def results_root() -> Path:
    """Root of everything the notebooks and benchmarks write."""
    return Path(os.environ.get("HRDA_RESULTS", REPO_ROOT / "results"))


def output_root() -> Path:
    """Where a notebook writes its results folder: `$HRDA_RESULTS` when set (the runner, `make
    demo` and `make rehearsal` set it), else the scratch folder: a notebook run by hand in
    JupyterLab never overwrites the committed `results/` unless the user sets HRDA_RESULTS."""
    if "HRDA_RESULTS" in os.environ:
        return results_root()
    return scratch_root()


def read_roots() -> list[Path]:
    """Where a notebook looks for earlier results, in order: the folder it writes
    (`output_root`), then the committed results (`results_root`), once if they are the same."""
    return list(dict.fromkeys((output_root(), results_root())))


def scratch_root() -> Path:
    """`scratch/` in the repository (gitignored), or `$HRDA_SCRATCH`."""
    return Path(os.environ.get("HRDA_SCRATCH", REPO_ROOT / "scratch"))


def golden_root() -> Path:
    """The official code's golden fixtures: the project's compact copy in `tests/golden` (made
    by `tests/golden/extract.py`) unless `HRDA_GOLDEN` names another folder of that layout."""
    return Path(os.environ.get("HRDA_GOLDEN", REPO_ROOT / "tests" / "golden"))


def resolve_weights(path: str | Path) -> Path:
    """A weights path as a config names it: absolute, or relative to the working folder, or
    else to the repository (so `pretrained/mit_b5.pth` works from `notebooks/` too)."""
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path
    return REPO_ROOT / path


def machine_roots() -> dict[str, str]:
    """This machine's roots that a written record should not name, each with the name it is
    written as: the repository `.`, a data or results root outside it `$HRDA_DATA` /
    `$HRDA_RESULTS`, the home folder `~` (each also in its resolved form)."""
    roots = {str(REPO_ROOT): "."}
    named = [(data_root(), "$HRDA_DATA"), (results_root(), "$HRDA_RESULTS"), (Path.home(), "~")]
    for path, name in named:
        for form in (path, path.resolve()):
            inside = form.is_relative_to(REPO_ROOT)  # written relative to the repository
            if form.is_absolute() and form != Path(form.anchor) and not inside:
                roots.setdefault(str(form), name)
    return roots


def portable(text: str, roots: dict[str, str] | None = None) -> str:
    """`text` with absolute paths under `roots` written as they hold on any machine.

    A path under a root named "." becomes relative to it (`<repo>/results/x` -> `results/x`,
    the root alone -> `.`); under another root it keeps its tail after the root's name
    (`/data/gta` -> `$HRDA_DATA/gta`). The longest root wins; only whole path components
    match (`/a/b` never matches in `/a/bc` or `/x/a/b`), and nothing after a root changes.

    Args:
        roots: {absolute root: its name}; default `machine_roots()`.
    """
    roots = machine_roots() if roots is None else roots
    for root in sorted(roots, key=len, reverse=True):
        name = roots[root]
        after = r"(?:(/)(?=[\w.~$-])|(?![\w.-]))"  # a path below it, or the root itself
        pattern = re.compile(r"(?<![\w.~$/-])" + re.escape(root.rstrip("/")) + after)
        if name == ".":  # relative to the root: its tail alone, or "." for the root itself
            text = pattern.sub(lambda m: "" if m.group(1) else ".", text)
        else:
            text = pattern.sub(lambda m, name=name: name + (m.group(1) or ""), text)
    return text
