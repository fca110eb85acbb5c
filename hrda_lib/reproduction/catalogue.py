"""The catalogue: which rows make up each of the paper's tables, and the profiles that say where
the rows run (the paper's data or the synthetic benchmark), for how long and with which seeds.

A row key names a row of `hrda_lib.presets.ROWS` (what it is called, how it is built, what was
published for it); a profile turns it into an experiment with `row_config`. Nothing here builds
or parses preset names.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from hrda_lib import experiments, presets, synthetic
from hrda_lib.ablations import context_size, rehearsal
from hrda_lib.config import ExperimentConfig, with_iters
from hrda_lib.errors import UnknownNameError, UsageError

# -- the paper's tables ---------------------------------------------------------------------------

MAIN_ROWS: tuple[str, ...] = (
    "source_only",
    "daformer_lr",
    "daformer_hr",
    "hrda",
    "fixedatt",
    "mic_hrda",
)
MAIN_TABLES: dict[str, tuple[str, ...]] = {"Table 1: main comparison": MAIN_ROWS}
CROP_SIZE_TABLES: dict[str, tuple[str, ...]] = {
    "Table 3: context crop size": ("hrda_context0.5", "hrda_context0.75", "hrda"),
    "Table 4: detail crop size": ("detail0.25", "detail0.375", "hrda"),
    "Table 5: HRDA vs naive HR crops": ("daformer_hr0.75", "hrda_context0.75_detail0.375"),
    "Figure 4: DAFormer crop size (UDA)": (
        "daformer_lr0.25",
        "daformer_lr0.5",
        "daformer_lr0.75",
        "daformer_lr",
        "daformer_hr0.25",
        "daformer_hr",
        "daformer_hr0.75",
    ),
    "Figure 4: supervised oracle on the target": ("oracle_lr", "oracle_hr"),
}
COMPONENT_TABLES: dict[str, tuple[str, ...]] = {
    "Table 7: components": (
        "daformer_hr",
        "daformer_lr",
        "fixedatt_nooverlap_ld0",
        "nooverlap_ld0",
        "ld0",
        "hrda",
    ),
    "Scale attention: learned, single-channel, averaging": ("fixedatt", "singleatt", "hrda"),
    "Table 6: detail crop source": ("samescale", "blurhr", "hrda"),
    "Figure S1: detail loss weight": ("ld0", "hrda", "ld0.3", "ld0.5"),
    "Table S1: context scale (context LR0.5)": ("sc0.25", "hrda_context0.5", "sc0.75"),
}
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
DG_ROWS: tuple[str, ...] = ("source_only", "dg_daformer", "dg_hrda")


def rows_of(tables: dict[str, Sequence[str]]) -> tuple[str, ...]:
    """The distinct row keys of some tables, in order of appearance."""
    return tuple(dict.fromkeys(key for keys in tables.values() for key in keys))


CROP_SIZE_ROWS = rows_of(CROP_SIZE_TABLES)
COMPONENT_ROWS = rows_of(COMPONENT_TABLES)
ROW_NAMES = presets.ROW_NAMES  # each row's label, from its row


# -- profiles -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """What `python -m hrda_lib.reproduce --profile <name>` runs."""

    name: str
    description: str  # one line for --list and the notebooks' headers
    benchmark: str  # smoke | synthetic | paper | rehearsal (the paper's rows, mock data, CPU)
    data: str  # synthetic variant (tiny | quick) or "real" (data/ in the official layouts)
    seeds: tuple[int, ...]  # seeds of the main comparison and the crop-size study (03, 04, 06)
    iters: int | None  # schedule length of every run; None = the presets' own
    crop_sizes: tuple[str, ...]  # rows of 04 (Tables 3-5, Figure 4)
    components: tuple[str, ...]  # rows of 05 (Tables 6-7, Figure S1, Table S1)
    main: tuple[str, ...] = MAIN_ROWS  # rows of 06 (the main comparison)
    uda_methods: dict[str, tuple[str, str]] = field(
        default_factory=lambda: dict(UDA_METHOD_PAIRS)
    )  # (LR, HRDA) row pairs of 09 (Table 2), by method
    domain_generalization: tuple[str, ...] = DG_ROWS  # rows of 09's DG table
    stand_in: tuple[str, ...] = ()  # rows of 00: what the ImageNet stand-in buys
    component_seeds: tuple[int, ...] = (0,)  # seeds of 05 (the component ablations)
    stand_in_seeds: tuple[int, ...] = (0,)  # seeds of 00's runs with and without the stand-in
    other_seeds: tuple[int, ...] = (0,)  # seeds of 09 (Table 2, domain generalization)
    notebooks: tuple[str, ...] | None = None  # numbers of the notebooks it runs; None: all
    jobs: int = 1  # runs trained at a time, one thread each (2 on a 2-core CPU)
    workspace: str = ""  # a folder of the repository that holds the profile's data/ and
    # results/ instead of data/ and results/ (unless HRDA_DATA / HRDA_RESULTS say otherwise)

    def __post_init__(self) -> None:
        named = [*self.main, *self.crop_sizes, *self.components, *self.stand_in]
        named += [*self.uda_method_rows, *self.domain_generalization]
        presets.require_rows(named, f"profile {self.name!r}")

    @property
    def uda_method_rows(self) -> tuple[str, ...]:
        """The rows of 09's Table 2: each method's (LR, HRDA) pair, in order."""
        return tuple(key for pair in self.uda_methods.values() for key in pair)

    @property
    def synthetic_variant(self) -> str:
        """The synthetic set the CPU notebooks use (quick when the profile trains on real data,
        tiny when it only rehearses)."""
        if self.benchmark == "rehearsal":
            return "tiny"
        return "quick" if self.data == "real" else self.data


STAND_IN_ROWS = (
    "oracle_lr",
    "oracle_lr_scratch",
    "oracle_lr_fractal",
    "source_only",
    "source_only_scratch",
    "source_only_fractal",
)
# The rows `make demo` (the quick profile) leaves to the synthetic profile, to stay within 30
# minutes on 2 cores: the averaging-attention control, the HR oracle and MIC.
QUICK_LEAVES_OUT: tuple[str, ...] = ("fixedatt", "oracle_hr", "mic_hrda")
PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke",
        "4 iterations per row on the tiny synthetic set, 1 seed (tests; seconds per run): every "
        "row whose crops reach MiT's 32 px minimum at 64x128",
        benchmark="smoke",
        data="tiny",
        seeds=(0,),
        iters=None,
        crop_sizes=("daformer_lr", "daformer_hr", "hrda", "daformer_hr0.75", "oracle_lr"),
        components=("daformer_lr", "daformer_hr", "hrda", "fixedatt", "ld0", "blurhr"),
        stand_in=("oracle_lr", "oracle_lr_scratch", "oracle_lr_fractal"),
        jobs=2,  # as the CPU profiles: tests the runs trained ahead, two at a time
    ),
    "quick": Profile(
        "quick",
        "`make demo`: the main comparison (source only, DAFormer on LR data and on HR crops, "
        "HRDA), the scale attention and the crop-size study with the LR oracle on the quick "
        "synthetic set, seed 0, two runs at a time",
        benchmark="synthetic",
        data="quick",
        seeds=(0,),
        iters=None,
        # Five runs fit 30 minutes on 2 cores; the averaging-attention control (16 min on a core),
        # the HR oracle (8 min) and MIC are the `synthetic` profile's (QUICK_LEAVES_OUT).
        crop_sizes=("daformer_lr", "daformer_hr", "hrda", "oracle_lr"),
        components=("hrda",),
        main=tuple(key for key in MAIN_ROWS if key not in QUICK_LEAVES_OUT),
        notebooks=("00", "01", "02", "03", "04", "06", "07", "08"),
        jobs=2,
    ),
    "synthetic": Profile(
        "synthetic",
        "the quick synthetic set: the main comparison, the crop-size study, the components and "
        "the stand-in's value with seeds 0-2; Table 2 and domain generalization with seed 0 "
        "(hours on 2 CPU cores)",
        benchmark="synthetic",
        data="quick",
        seeds=(0, 1, 2),
        iters=None,
        crop_sizes=CROP_SIZE_ROWS,
        components=COMPONENT_ROWS,
        component_seeds=(0, 1, 2),
        stand_in=STAND_IN_ROWS,
        stand_in_seeds=(0, 1, 2),
        jobs=2,
    ),
    "paper": Profile(
        "paper",
        "the paper's rows on GTA -> Cityscapes (real data under data/, a 24 GB GPU; days)",
        benchmark="paper",
        data="real",
        seeds=(0, 1, 2),
        iters=None,
        crop_sizes=CROP_SIZE_ROWS,
        components=COMPONENT_ROWS,
        uda_methods=dict(UDA_METHOD_PAIRS_PAPER),
        stand_in=(),
        component_seeds=(0, 1, 2),
        other_seeds=(0, 1, 2),
    ),
}
PROFILES["rehearsal"] = replace(
    PROFILES["paper"],
    name="rehearsal",
    description="the paper profile's rows, crops, windows and pipelines on mock GTA / "
    "Cityscapes at the real resolutions (MiT-b0, random init, 2 iterations per row, seed 0; "
    "written to rehearsal/): every notebook end to end on a CPU before a GPU is spent",
    benchmark="rehearsal",
    seeds=(0,),
    component_seeds=(0,),
    other_seeds=(0,),
    jobs=2,
    workspace="rehearsal",
)
PROFILES["rehearsal-fast"] = replace(
    PROFILES["rehearsal"],
    name="rehearsal-fast",
    description="the rehearsal's subset the tests run: data preparation, the crops, the scale "
    "attention and the main pair (DAFormer on LR data, HRDA) through the tables (01-03, 06, 07)",
    main=("daformer_lr", "hrda"),
    notebooks=("01", "02", "03", "06", "07"),
    workspace="rehearsal-fast",
)


# Rows that notebook 05 evaluates on real and on blurred test images, at the main seeds.
BLURRED_INPUT_ROWS: tuple[str, ...] = ("hrda", "oracle_hr")
presets.require_rows(BLURRED_INPUT_ROWS + QUICK_LEAVES_OUT, "catalogue")


Groups = tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]  # (row keys, seeds) groups


@dataclass(frozen=True)
class Notebook:
    """One numbered notebook: the notebooks whose results it reads (a newer result there makes
    it stale), and the runs it trains under a profile, as (row keys, seeds) groups (what its
    `train_rows` calls ask for with the default parameters). Every notebook's finished runs are
    reused by all the others (`runs.train_rows`)."""

    number: str
    reads: tuple[str, ...] = ()
    trains: Callable[[Profile], Groups] | None = None


# A new notebook is one entry here (and its .ipynb in notebooks/).
NOTEBOOKS: tuple[Notebook, ...] = (
    Notebook("00", trains=lambda p: ((p.stand_in, p.stand_in_seeds),)),
    Notebook("01"),
    Notebook("02", reads=("01",)),
    Notebook("03", reads=("00", "01"), trains=lambda p: ((("hrda",), p.seeds[:1]),)),
    Notebook("04", reads=("00", "01", "03"), trains=lambda p: ((p.crop_sizes, p.seeds),)),
    Notebook(
        "05",
        reads=("00", "01", "03", "04"),
        trains=lambda p: ((p.components, p.component_seeds), (BLURRED_INPUT_ROWS, p.seeds)),
    ),
    Notebook("06", reads=("00", "01", "03", "04", "05"), trains=lambda p: ((p.main, p.seeds),)),
    Notebook("07", reads=("01", "04", "05", "06")),
    Notebook("08"),
    Notebook(
        "09",
        reads=("00", "03", "04", "05", "06"),
        trains=lambda p: ((p.uda_method_rows + p.domain_generalization, p.other_seeds),),
    ),
)


def notebook_reads() -> dict[str, tuple[str, ...]]:
    """Notebook number -> the numbers of the notebooks whose results it reads."""
    return {nb.number: nb.reads for nb in NOTEBOOKS if nb.reads}


def notebook_rows(profile: str | Profile) -> dict[str, Groups]:
    """The rows and seeds each training notebook of `profile` trains, by notebook number."""
    prof = get_profile(profile)
    return {nb.number: nb.trains(prof) for nb in NOTEBOOKS if nb.trains is not None}


def get_profile(name: str | Profile) -> Profile:
    """The profile called `name` (smoke, quick, synthetic, paper, rehearsal, rehearsal-fast)."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise UnknownNameError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def row_config(profile: str | Profile, key: str, seed: int | None = None) -> ExperimentConfig:
    """The experiment of row `key` under `profile` (its schedule length; `seed` if given)."""
    profile = get_profile(profile)
    if profile.benchmark == "smoke":
        rows = presets.smoke_rows()
        if key not in rows:
            raise UsageError(f"row {key!r} has no smoke version (its crops are under MiT's 32 px)")
        cfg = rows[key]
    elif profile.benchmark == "paper":
        cfg = presets.build_row(experiments.PAPER, key)
    elif profile.benchmark == "rehearsal":
        cfg = rehearsal(presets.build_row(experiments.PAPER, key))
    else:
        cfg = presets.build_row(experiments.synthetic_benchmark(profile.data), key)
    if profile.iters:
        cfg = with_iters(cfg, profile.iters)
    return cfg if seed is None else replace(cfg, seed=seed)


def profile_context(profile: str | Profile) -> int:
    """C: the full-resolution context crop of the profile's HRDA (1024 paper, 256 quick)."""
    return context_size(row_config(profile, "hrda"))


def crop_label(cfg: ExperimentConfig, profile: str | Profile) -> str:
    """The paper's crop notation of a run, relative to the profile's context C: "LR1.0 + HR0.5"
    for HRDA (context and detail crop), "LR0.5" / "HR0.75" for a single-scale DAFormer."""
    context = profile_context(profile)
    hrda_scale = row_config(profile, "hrda").data.test_pipeline.scale[0]
    lr_data = cfg.data.test_pipeline.scale[0] < hrda_scale  # half-resolution data
    crop = (cfg.data.sync_crop_size or cfg.data.source_pipeline.crop_size)[0] * (
        2 if lr_data else 1
    )
    if cfg.model.multi_resolution:
        detail = cfg.model.detail_crop_size[0] * (2 if lr_data else 1)
        kind = "LR" if lr_data else "HR"
        return f"LR{round(crop / context, 3)} + {kind}{round(detail / context, 3)}"
    return f"{'LR' if lr_data else 'HR'}{round(crop / context, 3)}"


def row_label(profile: str | Profile, key: str) -> str:
    """A table row's name with its crop notation, e.g. "HRDA, λ_d = 0 — LR1.0 + HR0.5"."""
    cfg = row_config(profile, key)
    return f"{presets.ROWS[key].label} — {crop_label(cfg, profile)}"


def row_labels(profile: str | Profile, keys: Sequence[str]) -> dict[str, str]:
    """`row_label` of every key."""
    return {key: row_label(profile, key) for key in keys}


def measured_on(profile: str | Profile, seeds: Sequence[int], iters: int | None = None) -> str:
    """What a profile's numbers were measured on, for the label of every table and figure
    (`iters` 0 or None: the profile's schedule length)."""
    profile = get_profile(profile)
    iters = iters or row_config(profile, "hrda").iters
    seeds_named = f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    runs = f"profile {profile.name}, {seeds_named}, {iters} iterations"
    if profile.benchmark == "rehearsal":
        return f"mock GTA→Cityscapes at the real resolutions (a rehearsal, not a result), {runs}"
    if profile.data == "real":
        return f"GTA→Cityscapes val (19 classes), {runs}"
    size = synthetic.VARIANTS[profile.data]()
    return (
        f"synthetic '{profile.data}' benchmark, target val ({size.n_target_val} images, "
        f"{size.height}x{size.width}), {runs}"
    )
