"""The papermill runner: executes the numbered notebooks of a profile in order, each writing
`results/<notebook-stem>/`, and skips a notebook whose results are up to date.

    python -m hrda_lib.reproduce --profile quick            # `make demo`
    python -m hrda_lib.reproduce --profile smoke --only 04,05 --force
    python -m hrda_lib.reproduce --list                     # profiles and notebooks
    python -m hrda_lib.reproduce --profile rehearsal        # `make rehearsal`, into rehearsal/

Up to date means: `config.json` holds the same parameters, and the notebook, every `hrda_lib`
module and the results of the notebooks it reads (`catalogue.NOTEBOOKS`) are as they were when
it ran (compared by content, recorded in `provenance.json`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import papermill
from papermill.exceptions import PapermillExecutionError

from hrda_lib.cli import run as run_cli
from hrda_lib.paths import REPO_ROOT, data_root, portable, results_root
from hrda_lib.reproduction.catalogue import PROFILES, Profile, get_profile, notebook_reads
from hrda_lib.reproduction.runs import train_ahead
from hrda_lib.synthetic.mock_real import ensure_mock_real

NOTEBOOKS_DIR: Path = REPO_ROOT / "notebooks"


# -- the runner ---------------------------------------------------------------------------------


def notebook_paths() -> list[Path]:
    """The numbered source notebooks, in order."""
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def notebook_parameters(source: Path, profile: Profile | str) -> dict:
    """The papermill parameters of a notebook under `profile`: the profile's name (each
    notebook reads its rows, seeds and schedule from it)."""
    profile = get_profile(profile)
    declared = papermill.inspect_notebook(str(source))
    return {k: v for k, v in {"profile": profile.name}.items() if k in declared}


def profile_notebooks(profile: Profile | str, notebooks: list[Path] | None = None) -> list[Path]:
    """The notebooks a profile runs, in order (all numbered ones unless it names a subset)."""
    profile = get_profile(profile)
    sources = notebooks if notebooks is not None else notebook_paths()
    if profile.notebooks is None:
        return list(sources)
    return [s for s in sources if s.stem[:2] in profile.notebooks]


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()[:16]


def provenance(source: Path, results: Path, library: Path = REPO_ROOT / "hrda_lib") -> dict:
    """What a notebook's results depend on, by content (not file times, which a clone resets):
    the notebook, every `hrda_lib` module (sub-packages included), the stand-in's committed
    weights, and the config.json of every notebook it reads."""
    weights = sorted((library.parent / "pretrained").glob("*.pth"))  # the stand-in's weights
    files = [*sorted(library.rglob("*.py")), *weights]
    code = _digest(source.read_bytes(), *(p.read_bytes() for p in files))
    upstream = {
        cfg.parent.name: _digest(cfg.read_bytes())
        for number in notebook_reads().get(source.stem[:2], ())
        for cfg in sorted(results.glob(f"{number}_*/config.json"))
    }
    return {"code": code, "upstream": upstream}


def staleness(
    source: Path, params: dict, results: Path, library: Path = REPO_ROOT / "hrda_lib"
) -> str | None:
    """Why notebook `source` must run again (a short reason), or None if its results are current.

    Current means: `results/<stem>/config.json` exists with the same parameters, and the
    provenance recorded beside it (`provenance.json`) matches the notebook, `hrda_lib` and the
    results of the notebooks it reads (`catalogue.NOTEBOOKS`) as they are now.
    """
    config_path = results / source.stem / "config.json"
    if not config_path.is_file():
        return "no results yet"
    recorded = json.loads(config_path.read_text()).get("parameters", {})
    changed = sorted(k for k in params if recorded.get(k) != params[k])
    if changed:
        return f"parameters changed: {', '.join(changed)}"
    record_path = results / source.stem / "provenance.json"
    if not record_path.is_file():
        return "no provenance record"
    record, now = json.loads(record_path.read_text()), provenance(source, results, library)
    if record.get("code") != now["code"]:
        return "the notebook or hrda_lib changed"
    for name, digest in now["upstream"].items():
        if record.get("upstream", {}).get(name) != digest:
            return f"{name} has newer results"
    return None


@dataclass
class NotebookFailure(Exception):
    """A notebook raised: where, what, and where the executed copy is."""

    notebook: str
    cell_index: int | None
    cell_source: str
    error: str
    executed_copy: Path
    done: list[dict] = field(default_factory=list)  # the notebooks handled before it (`run`)

    def report(self, source_lines: int = 6) -> str:
        head = "\n".join(f"    | {ln}" for ln in self.cell_source.splitlines()[:source_lines])
        cell = f"cell {self.cell_index}" if self.cell_index is not None else "a cell"
        return (
            f"FAILED: notebook {self.notebook}, {cell}:\n{head}\n"
            f"  error: {self.error}\n"
            f"  executed copy (outputs up to the failure): {self.executed_copy}"
        )


def portable_notebook(path: Path, roots: dict[str, str] | None = None) -> bool:
    """Rewrite an executed notebook with this machine's paths as `paths.portable` writes them
    (papermill's input and output paths, printed outputs, tracebacks): the repository as
    relative paths, a data or results root elsewhere as `$HRDA_DATA` / `$HRDA_RESULTS`. Images
    are left as they are. True if anything changed.

    Args:
        roots: {absolute root: its name}; default `paths.machine_roots()`.
    """

    def rewrite(value, key: str = ""):
        if isinstance(value, str):
            return value if key.startswith("image/") else portable(value, roots)
        if isinstance(value, list):
            return [rewrite(item, key) for item in value]
        if isinstance(value, dict):
            return {k: rewrite(item, k) for k, item in value.items()}
        return value

    text = path.read_text()
    # nbformat's own layout (`nbformat.write`), so that only the rewritten strings differ.
    new = json.dumps(rewrite(json.loads(text)), indent=1, sort_keys=True, ensure_ascii=False)
    new += "\n" if text.endswith("\n") else ""
    if new == text:
        return False
    path.write_text(new)
    return True


def execute(source: Path, params: dict, results: Path) -> float:
    """Run one notebook with papermill into `results/<stem>/<stem>.ipynb`; seconds taken. The
    executed copy names no path of this machine (`portable_notebook`).

    Raises:
        NotebookFailure: a cell raised (the executed copy keeps the outputs up to it).
    """
    out_dir = results / source.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config.json").unlink(missing_ok=True)  # a failed run must not look up to date
    executed = out_dir / source.name
    start = time.perf_counter()
    try:
        papermill.execute_notebook(
            str(source),
            str(executed),
            parameters=params,
            kernel_name="python3",
            cwd=str(source.parent),
            progress_bar=False,
            # The kernel's own log (a TCP-encryption warning, an interrupt at shutdown) is noise
            # between the progress lines; cell errors and a dead kernel are still reported.
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except PapermillExecutionError as error:
        raise NotebookFailure(
            source.stem,
            error.cell_index,
            error.source or "",
            f"{error.ename}: {error.evalue}",
            executed,
        ) from error
    except Exception as error:  # kernel died, notebook unreadable, ...
        raise NotebookFailure(
            source.stem, None, "", f"{type(error).__name__}: {error}", executed
        ) from error
    portable_notebook(executed)
    return time.perf_counter() - start


def _training_ahead(prof: Profile, sources: list[Path], force: bool, results: Path) -> list[str]:
    """The training notebooks (03 on) that will run: stale now, or reading one that will run.
    Their runs are trained together before the first of them (`runs.train_ahead`): notebooks
    run one after another, and one that trains a single run would leave a core idle."""
    will_run: set[str] = set()
    for source in sources:
        number = source.stem[:2]
        stale = force or staleness(source, notebook_parameters(source, prof), results) is not None
        if stale or any(upstream in will_run for upstream in notebook_reads().get(number, ())):
            will_run.add(number)
    return [s.stem for s in sources if s.stem[:2] in will_run and s.stem[:2] >= "03"]


def run(
    profile: str,
    only: list[str] | None = None,
    force: bool = False,
    results: Path | None = None,
    notebooks: list[Path] | None = None,
    log=print,
) -> list[dict]:
    """Execute the notebooks of `profile` in order; one progress line each, when it ends.

    Args:
        only: notebook numbers ("04") or stems to run; None = all.
        force: run even when the results are up to date.
        results: results root (default `hrda_lib.paths.results_root()`, i.e. $HRDA_RESULTS).
        notebooks: source notebooks (default `notebook_paths()`).

    Returns:
        One dict per notebook: stem, status (ran | skipped), seconds, reason.

    Raises:
        NotebookFailure: at the first failing notebook (the later ones are not run).
    """
    prof = get_profile(profile)
    results = Path(results) if results is not None else results_root()
    sources = profile_notebooks(prof, notebooks)
    if only:
        sources = [s for s in sources if s.stem[:2] in only or s.stem in only]
    prepare_data(prof, log)
    previous = os.environ.get("HRDA_RESULTS")
    os.environ["HRDA_RESULTS"] = str(results)  # the notebooks' kernels write there, not scratch/
    try:
        return _run_notebooks(prof, sources, force, results, log)
    finally:
        if previous is None:
            os.environ.pop("HRDA_RESULTS", None)
        else:
            os.environ["HRDA_RESULTS"] = previous


def _run_notebooks(
    prof: Profile, sources: list[Path], force: bool, results: Path, log
) -> list[dict]:
    ahead = _training_ahead(prof, sources, force, results) if prof.jobs > 1 else []
    done = []
    for source in sources:
        params = notebook_parameters(source, prof)
        reason = "--force" if force else staleness(source, params, results)
        if reason is None:
            log(f"[reproduce] {source.stem:<28s} skipped (up to date)")
            done.append({"stem": source.stem, "status": "skipped", "seconds": 0.0, "reason": ""})
            continue
        if ahead and source.stem == ahead[0]:
            start = time.perf_counter()
            trained = train_ahead(prof, ahead, results=results)
            log(
                f"[reproduce] trained {trained} runs of {', '.join(ahead)} ahead, {prof.jobs} at "
                f"a time, in {time.perf_counter() - start:.0f} s"
            )
        try:
            seconds = execute(source, params, results)
        except NotebookFailure as failure:
            failure.done = done
            raise
        record = json.dumps(provenance(source, results), indent=2)
        (results / source.stem / "provenance.json").write_text(record)
        log(f"[reproduce] {source.stem:<28s} done in {seconds:.1f} s ({reason})")
        done.append({"stem": source.stem, "status": "ran", "seconds": seconds, "reason": reason})
    return done


def use_workspace(profile: Profile) -> None:
    """Point this process and the notebook kernels at the profile's workspace, if it has one
    (`<workspace>/data`, `<workspace>/results`), unless HRDA_DATA / HRDA_RESULTS name other
    folders: a rehearsal never writes into data/ or results/."""
    if profile.workspace:
        workspace = REPO_ROOT / profile.workspace
        os.environ.setdefault("HRDA_DATA", str(workspace / "data"))
        os.environ.setdefault("HRDA_RESULTS", str(workspace / "results"))


def prepare_data(profile: Profile, log=print) -> None:
    """Write the mock GTA / Cityscapes of a rehearsal into the data root, if not there yet
    (refused where real data lies)."""
    if profile.benchmark == "rehearsal":
        start = time.perf_counter()
        ensure_mock_real(data_root())
        seconds = time.perf_counter() - start
        log(f"[reproduce] mock GTA / Cityscapes ready in {data_root()} ({seconds:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--profile", default="quick", choices=list(PROFILES))
    parser.add_argument("--only", default="", help="comma-separated notebook numbers, e.g. 04,05")
    parser.add_argument("--force", action="store_true", help="re-run up-to-date notebooks too")
    parser.add_argument("--list", action="store_true", help="print the profiles and notebooks")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch (OpenMP) threads of the notebook kernels; 1 avoids a many-fold slowdown of "
        "2 threads when other processes compete for the cores (default: torch's choice)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the kernels inherit it
    if args.list:
        for p in PROFILES.values():
            print(f"{p.name:10s} {p.description}")
        print("\n".join(s.stem for s in notebook_paths()))
        return
    only = [s.strip() for s in args.only.split(",") if s.strip()] or None
    use_workspace(get_profile(args.profile))
    start = time.perf_counter()
    try:
        done = run(args.profile, only, args.force)
    except NotebookFailure as failure:
        print(failure.report(), file=sys.stderr)
        sys.exit(1)
    ran = sum(d["status"] == "ran" for d in done)
    print(
        f"[reproduce] profile {args.profile}: {ran} notebooks ran, {len(done) - ran} up to date, "
        f"{time.perf_counter() - start:.0f} s; results in {results_root()}"
    )


if __name__ == "__main__":
    run_cli(main)
