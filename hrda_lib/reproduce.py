"""Reproduce the paper's tables and figures: the numbered notebooks, run in order by papermill.

    python -m hrda_lib.reproduce --profile quick            # `make demo`: ~45 min on 2 CPU cores
    python -m hrda_lib.reproduce --profile smoke --only 04,05 --force
    python -m hrda_lib.reproduce --list                     # profiles and notebooks
    python -m hrda_lib.reproduce --profile quick --threads 1  # on a machine shared with others

A profile says which experiment rows run, on which data, for how many iterations and seeds
(`PROFILES`). Each notebook `notebooks/NN_name.ipynb` runs with the parameters its profile implies
and writes `results/NN_name/` (its `config.json`, tidy CSVs, PNGs and the executed copy
`NN_name.ipynb`). A notebook is skipped when its results are up to date: its `config.json` holds
the same parameters and neither the source notebook, `hrda_lib`, nor the results of a notebook it
reads are newer. The experiment rows of HRDA's tables are defined here too (`row_config`), as
changes of the presets of `hrda_lib.presets`, so that notebooks and profiles share one catalogue.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from hrda_lib.experiment import ExperimentConfig
from hrda_lib.paths import REPO_ROOT, results_root

NOTEBOOKS_DIR: Path = REPO_ROOT / "notebooks"

# Notebooks whose results a notebook reads (a newer result there makes it stale).
READS: dict[str, tuple[str, ...]] = {
    "02": ("01",),
    "03": ("01",),
    "04": ("01", "03"),
    "05": ("01", "03", "04"),
    "06": ("01", "03", "04", "05"),
    "07": ("01", "04", "05", "06"),
    "09": ("03", "04", "05", "06"),
}

# -- experiment rows ------------------------------------------------------------------------------

MAIN_ROWS: tuple[str, ...] = ("source_only", "daformer_lr", "daformer_hr", "hrda", "mic_hrda")
ATTENTION_ROWS: tuple[str, ...] = ("fixedatt", "singleatt", "nooverlap")
DETAIL_LOSS_ROWS: tuple[str, ...] = ("ld0", "ld0.3", "ld0.5")
DETAIL_SOURCE_ROWS: tuple[str, ...] = ("samescale", "blurhr")
CONTEXT_SCALE_ROWS: tuple[str, ...] = ("sc0.25", "sc0.75")

# Crop-size rows that are no preset: (base row, context crop, detail crop or DAFormer crop), sizes
# relative to the base context crop C of the profile (1024 in the paper, 256 on `quick`). A
# DAFormer "lr" crop is in pixels of the half-resolution image, so LR1.0 covers the context C.
CROP_VARIANTS: dict[str, tuple[str, float, float | None]] = {
    "hrda_context0.5": ("hrda", 0.5, 0.5),  # Table 3: LR0.5 + HR0.5 (detail = context)
    "hrda_context0.75": ("hrda", 0.75, 0.5),  # Table 3: LR0.75 + HR0.5
    "hrda_context0.75_detail0.375": ("hrda", 0.75, 0.375),  # Table 5: LR0.75 + HR0.375
    "hrda_detail0.25": ("hrda", 1.0, 0.25),  # Table 4: LR1.0 + HR0.25
    "hrda_detail0.375": ("hrda", 1.0, 0.375),  # Table 4: LR1.0 + HR0.375
    "daformer_hr0.25": ("daformer_hr", 0.25, None),  # Figure 4: DAFormer, HR data
    "daformer_hr0.75": ("daformer_hr", 0.75, None),  # Figure 4 / Table 5: naive HR0.75 crops
    "daformer_lr0.25": ("daformer_lr", 0.25, None),  # Figure 4: DAFormer, LR data
    "daformer_lr0.5": ("daformer_lr", 0.5, None),
    "daformer_lr0.75": ("daformer_lr", 0.75, None),
}
CROP_SIZE_ROWS: tuple[str, ...] = (
    "hrda",
    "daformer_lr",
    "daformer_hr",
    *CROP_VARIANTS,
)
COMPONENT_ROWS: tuple[str, ...] = (
    "hrda",
    "daformer_lr",
    "daformer_hr",
    *ATTENTION_ROWS,
    *DETAIL_LOSS_ROWS,
    *DETAIL_SOURCE_ROWS,
    *CONTEXT_SCALE_ROWS,
)

# The rows of each table of the paper that the notebooks reproduce (in the paper's order).
CROP_SIZE_TABLES: dict[str, tuple[str, ...]] = {
    "Table 3: context crop size": ("hrda_context0.5", "hrda_context0.75", "hrda"),
    "Table 4: detail crop size": ("hrda_detail0.25", "hrda_detail0.375", "hrda"),
    "Table 5: HRDA vs naive HR crops": ("daformer_hr0.75", "hrda_context0.75_detail0.375"),
    "Figure 4: DAFormer crop size": (
        "daformer_lr0.25",
        "daformer_lr0.5",
        "daformer_lr0.75",
        "daformer_lr",
        "daformer_hr0.25",
        "daformer_hr",
        "daformer_hr0.75",
    ),
}
COMPONENT_TABLES: dict[str, tuple[str, ...]] = {
    "Table 7: components": (
        "daformer_hr",
        "daformer_lr",
        "fixedatt",
        "singleatt",
        "nooverlap",
        "ld0",
        "hrda",
    ),
    "Table 6: detail crop source": ("samescale", "blurhr", "hrda"),
    "Figure S1: detail loss weight": ("ld0", "hrda", "ld0.3", "ld0.5"),
    "Table S1: context scale": ("sc0.25", "hrda", "sc0.75"),
}
MAIN_TABLES: dict[str, tuple[str, ...]] = {"Table 1: main comparison": MAIN_ROWS}

# Table 2: UDA methods without and with HRDA, as (LR data row, HRDA row) per method. On the
# synthetic benchmark the DAFormer-recipe pair is Table 1's (MiT-b0 stands in for DeepLabV2).
UDA_METHOD_PAIRS: dict[str, tuple[str, str]] = {
    "DAFormer recipe": ("daformer_lr", "hrda"),
    "DACS": ("dacs_lr", "dacs"),
    "AdvSeg": ("advseg_lr", "advseg"),
    "MinEnt": ("minent_lr", "minent"),
}
UDA_METHOD_PAIRS_PAPER: dict[str, tuple[str, str]] = {
    **UDA_METHOD_PAIRS,
    "DAFormer recipe": ("deeplabv2_lr", "deeplabv2"),
}
UDA_METHOD_ROWS: tuple[str, ...] = tuple(k for pair in UDA_METHOD_PAIRS.values() for k in pair)
ROW_NAMES: dict[str, str] = {
    "source_only": "Source only",
    "daformer_lr": "DAFormer (LR data)",
    "daformer_hr": "DAFormer (HR crops)",
    "hrda": "HRDA",
    "mic_hrda": "MIC (HRDA)",
    "fixedatt": "HRDA, averaging (attention 0.5)",
    "singleatt": "HRDA, 1-channel attention",
    "nooverlap": "HRDA, non-overlapping detail slide",
    "ld0": "HRDA, λ_d = 0",
    "ld0.3": "HRDA, λ_d = 0.3",
    "ld0.5": "HRDA, λ_d = 0.5",
    "samescale": "HRDA, context at detail scale",
    "blurhr": "HRDA, blurred detail crop",
    "sc0.25": "HRDA, context scale 0.25",
    "sc0.75": "HRDA, context scale 0.75",
    "deeplabv2_lr": "DAFormer recipe (LR data)",
    "deeplabv2": "HRDA, DAFormer recipe",
    "dacs_lr": "DACS (LR data)",
    "dacs": "HRDA, DACS",
    "advseg_lr": "AdvSeg (LR data)",
    "advseg": "HRDA, AdvSeg",
    "minent_lr": "MinEnt (LR data)",
    "minent": "HRDA, MinEnt",
}

# The paper's presets of the rows that have one (the others derive from these).
PAPER_PRESETS: dict[str, str] = {
    "hrda": "gta_to_cityscapes_hrda",
    "source_only": "gta_to_cityscapes_source_only",
    "daformer_lr": "gta_to_cityscapes_daformer",
    "daformer_hr": "gta_to_cityscapes_daformer_hr_crop512",
    "mic_hrda": "gta_to_cityscapes_mic_hrda",
    **{
        s: f"gta_to_cityscapes_hrda_{s}"
        for s in (*ATTENTION_ROWS, *DETAIL_LOSS_ROWS, *DETAIL_SOURCE_ROWS, *CONTEXT_SCALE_ROWS)
    },
    **{
        f"{m}_lr" if not hrda else m: f"gta_to_cityscapes_{'hrda_' if hrda else ''}{m}"
        for m in ("deeplabv2", "dacs", "advseg", "minent")
        for hrda in (False, True)
    },
}


@dataclass(frozen=True)
class Profile:
    """What `python -m hrda_lib.reproduce --profile <name>` runs."""

    name: str
    description: str  # one line for --list and the notebooks' headers
    presets: str  # preset family: smoke | synthetic | paper
    data: str  # synthetic variant (tiny | quick) or "real" (data/ in the official layouts)
    seeds: tuple[int, ...]  # every table row is the mean and spread over these
    iters: int | None  # schedule length of every run; None = the presets' own
    crop_sizes: tuple[str, ...]  # rows of 04 (Tables 3-5, Figure 4)
    components: tuple[str, ...]  # rows of 05 (Tables 6-7, Figure S1, Table S1)
    main: tuple[str, ...] = MAIN_ROWS  # rows of 06 (the main comparison)
    uda_methods: dict[str, tuple[str, str]] = field(
        default_factory=lambda: dict(UDA_METHOD_PAIRS)
    )  # (LR, HRDA) row pairs of 09 (Table 2), by method

    @property
    def synthetic_variant(self) -> str:
        """The synthetic set the CPU notebooks use (quick when the profile trains on real data)."""
        return "quick" if self.data == "real" else self.data


PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        "4 iterations per row on the tiny synthetic set, 1 seed (tests; seconds per run): every "
        "row whose crops reach MiT's 32 px minimum at 64x128",
        presets="smoke",
        data="tiny",
        seeds=(0,),
        iters=None,
        crop_sizes=("daformer_lr", "daformer_hr", "hrda", "daformer_hr0.75"),
        components=tuple(key for key in COMPONENT_ROWS if key != "sc0.25"),
    ),
    "quick": Profile(
        "quick",
        "main comparison + one row per crop/attention/detail family + Table 2's methods, "
        "quick synthetic set, 1 seed, 200 iterations: 14 training runs, ~45 min on 2 CPU "
        "cores (`make demo`)",
        presets="synthetic",
        data="quick",
        seeds=(0,),
        # 200, not the presets' 300: measured 1.0 s per HRDA iteration and 18 s per evaluation
        # with 1 thread here, so 300 iterations would take ~39 min for the 8 runs.
        iters=200,
        crop_sizes=("daformer_lr", "daformer_hr", "hrda", "hrda_detail0.25"),
        components=("daformer_lr", "daformer_hr", "hrda", "fixedatt", "blurhr"),
    ),
    "synthetic": Profile(
        "synthetic",
        "every row of the tables on the quick synthetic set, seeds 0-2 (hours on CPU)",
        presets="synthetic",
        data="quick",
        seeds=(0, 1, 2),
        iters=None,
        crop_sizes=CROP_SIZE_ROWS,
        components=COMPONENT_ROWS,
    ),
    "paper": Profile(
        "paper",
        "the paper's rows on GTA -> Cityscapes (real data under data/, a 24 GB GPU; days)",
        presets="paper",
        data="real",
        seeds=(0, 1, 2),
        iters=None,
        crop_sizes=CROP_SIZE_ROWS,
        components=COMPONENT_ROWS,
        uda_methods=dict(UDA_METHOD_PAIRS_PAPER),
    ),
}


def get_profile(name: str) -> Profile:
    """The profile called `name` (smoke, quick, synthetic, paper)."""
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def _preset(profile: Profile, key: str) -> ExperimentConfig:
    from hrda_lib.presets import get_preset

    if profile.presets == "paper":
        return get_preset(PAPER_PRESETS[key])
    return get_preset(f"{profile.presets}_{key}")


def context_size(profile: Profile) -> int:
    """C: the full-resolution context crop of the profile's HRDA (1024 paper, 256 quick)."""
    return _preset(profile, "hrda").data.source_pipeline.crop_size[0]


def _with_crops(
    cfg: ExperimentConfig, name: str, crop: int, detail: int | None
) -> ExperimentConfig:
    """`cfg` trained on `crop` x `crop` crops (and HRDA detail crops), tested with that window."""
    data = replace(
        cfg.data,
        source_pipeline=replace(cfg.data.source_pipeline, crop_size=(crop, crop)),
        target_pipeline=replace(cfg.data.target_pipeline, crop_size=(crop, crop)),
    )
    model = cfg.model
    if detail is not None:
        # Detail as large as the context: the LR branch gets its own loss, as experiments.py does.
        lr_weight = model.detail_loss_weight if detail == crop else model.lr_loss_weight
        model = replace(model, detail_crop_size=(detail, detail), lr_loss_weight=lr_weight)
    return replace(
        cfg,
        name=name,
        data=data,
        model=model,
        test_window=(crop, crop),
        test_stride=(crop // 2, crop // 2),
    )


def row_config(profile: Profile | str, key: str) -> ExperimentConfig:
    """The experiment of row `key` (see `MAIN_ROWS`, `CROP_SIZE_ROWS`, `COMPONENT_ROWS`)."""
    profile = get_profile(profile) if isinstance(profile, str) else profile
    prefix = "gta_to_cityscapes" if profile.presets == "paper" else profile.presets
    context = context_size(profile)
    if key in CROP_VARIANTS:
        base_key, rel_context, rel_detail = CROP_VARIANTS[key]
        base = _preset(profile, base_key)
        if rel_detail is None:  # DAFormer: the crop in pixels of its own data
            scale = 0.5 if base_key == "daformer_lr" else 1.0
            return _with_crops(base, f"{prefix}_{key}", round(rel_context * context * scale), None)
        return _with_crops(
            base, f"{prefix}_{key}", round(rel_context * context), round(rel_detail * context)
        )
    return _preset(profile, key)


def crop_label(cfg: ExperimentConfig, profile: Profile | str) -> str:
    """The paper's crop notation of a run, relative to the profile's context C: "LR1.0 + HR0.5"
    for HRDA (context and detail crop), "LR0.5" / "HR0.75" for a single-scale DAFormer."""
    profile = get_profile(profile) if isinstance(profile, str) else profile
    context = context_size(profile)
    crop = cfg.data.source_pipeline.crop_size[0]
    if cfg.model.multi_resolution:
        detail = cfg.model.detail_crop_size[0]
        return f"LR{round(crop / context, 3)} + HR{round(detail / context, 3)}"
    hrda_scale = _preset(profile, "hrda").data.test_pipeline.scale[0]
    if cfg.data.test_pipeline.scale[0] < hrda_scale:  # half-resolution data
        return f"LR{round(2 * crop / context, 3)}"
    return f"HR{round(crop / context, 3)}"


def encoder_input_sizes(cfg: ExperimentConfig) -> tuple[int, ...]:
    """Side lengths (px) of the inputs the encoder sees in training: the LR context and the
    detail crop for HRDA, the crop for a single-scale model (MiT needs at least 32)."""
    crop = cfg.data.source_pipeline.crop_size[0]
    if not cfg.model.multi_resolution:
        return (crop,)
    return (round(crop * cfg.model.context_scale), cfg.model.detail_crop_size[0])


def row_label(profile: Profile | str, key: str) -> str:
    """A table row's name with its crop notation, e.g. "HRDA, λ_d = 0 — LR1.0 + HR0.5"."""
    cfg = row_config(profile, key)
    name = ROW_NAMES.get(key, "HRDA" if cfg.model.multi_resolution else "DAFormer")
    return f"{name} — {crop_label(cfg, profile)}"


def row_labels(profile: Profile | str, keys: Sequence[str]) -> dict[str, str]:
    """`row_label` of every key."""
    return {key: row_label(profile, key) for key in keys}


def measured_on(profile: Profile | str, seeds: Sequence[int], iters: int | None = None) -> str:
    """What a profile's numbers were measured on, for the label of every table and figure
    (`iters` 0 or None: the profile's schedule length)."""
    from hrda_lib import synthetic

    profile = get_profile(profile) if isinstance(profile, str) else profile
    iters = iters or profile.iters or _preset(profile, "hrda").iters
    runs = f"profile {profile.name}, seeds {', '.join(map(str, seeds))}, {iters} iterations"
    if profile.data == "real":
        return f"GTA→Cityscapes val (19 classes), {runs}"
    size = synthetic.VARIANTS[profile.data]()
    return (
        f"synthetic '{profile.data}' benchmark, target val ({size.n_target_val} images, "
        f"{size.height}x{size.width}), {runs}"
    )


# -- the runner ---------------------------------------------------------------------------------


def notebook_paths() -> list[Path]:
    """The numbered source notebooks, in order."""
    return sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))


def notebook_parameters(source: Path, profile: Profile | str) -> dict:
    """The papermill parameters of a notebook under `profile`: `profile`, and `seeds` and
    `iters` for the notebooks that declare them (the training notebooks)."""
    import papermill

    profile = get_profile(profile) if isinstance(profile, str) else profile
    implied = {"profile": profile.name, "seeds": list(profile.seeds), "iters": profile.iters or 0}
    declared = papermill.inspect_notebook(str(source))
    return {k: v for k, v in implied.items() if k in declared}


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()[:16]


def provenance(source: Path, results: Path, library: Path = REPO_ROOT / "hrda_lib") -> dict:
    """What a notebook's results depend on, by content (not file times, which a clone resets):
    the notebook, every `hrda_lib` module, and the config.json of every notebook it reads."""
    code = _digest(source.read_bytes(), *(p.read_bytes() for p in sorted(library.glob("*.py"))))
    upstream = {
        cfg.parent.name: _digest(cfg.read_bytes())
        for number in READS.get(source.stem[:2], ())
        for cfg in sorted(results.glob(f"{number}_*/config.json"))
    }
    return {"code": code, "upstream": upstream}


def staleness(
    source: Path, params: dict, results: Path, library: Path = REPO_ROOT / "hrda_lib"
) -> str | None:
    """Why notebook `source` must run again (a short reason), or None if its results are current.

    Current means: `results/<stem>/config.json` exists with the same parameters, and the
    provenance recorded beside it (`provenance.json`) matches the notebook, `hrda_lib` and the
    results of the notebooks it reads (`READS`) as they are now.
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


def execute(source: Path, params: dict, results: Path) -> float:
    """Run one notebook with papermill into `results/<stem>/<stem>.ipynb`; seconds taken.

    Raises:
        NotebookFailure: a cell raised (the executed copy keeps the outputs up to it).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

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
    return time.perf_counter() - start


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
    sources = notebooks if notebooks is not None else notebook_paths()
    if only:
        sources = [s for s in sources if s.stem[:2] in only or s.stem in only]
    done = []
    for source in sources:
        params = notebook_parameters(source, prof)
        reason = "--force" if force else staleness(source, params, results)
        if reason is None:
            log(f"[reproduce] {source.stem:<28s} skipped (up to date)")
            done.append({"stem": source.stem, "status": "skipped", "seconds": 0.0, "reason": ""})
            continue
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
    main()
