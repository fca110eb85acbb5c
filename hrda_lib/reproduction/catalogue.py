"""The catalogue: which rows make up each of the paper's tables, what each row is called, and the
profiles that say where the rows run (the paper's data or the synthetic benchmark), for how
long and with which seeds.

A row key names a function of `hrda_lib.presets.ROWS`; a profile turns it into an experiment
with `row_config`. Nothing here builds or parses preset names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from hrda_lib import presets, synthetic
from hrda_lib.ablations import context_size as context_crop
from hrda_lib.ablations import rehearsal
from hrda_lib.config import ExperimentConfig, with_iters

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
    "nooverlap_ld0": "HRDA, λ_d = 0, no detail overlap",
    "fixedatt_nooverlap_ld0": "HRDA, λ_d = 0, no overlap, averaging",
    "ld0.3": "HRDA, λ_d = 0.3",
    "ld0.5": "HRDA, λ_d = 0.5",
    "samescale": "HRDA, detail at the context's resolution",
    "blurhr": "HRDA, blurred detail crop",
    "sc0.25": "HRDA, context scale 0.25",
    "sc0.75": "HRDA, context scale 0.75",
    **{
        k: "HRDA"
        for k in (
            "hrda_context0.5",
            "hrda_context0.75",
            "detail0.25",
            "detail0.375",
            "hrda_context0.75_detail0.375",
        )
    },
    **{f"daformer_lr{c}": "DAFormer (LR data)" for c in ("0.25", "0.5", "0.75")},
    **{f"daformer_hr{c}": "DAFormer (HR crops)" for c in ("0.25", "0.75")},
    "oracle_lr": "Oracle: supervised on the target, LR data",
    "oracle_lr_scratch": "Oracle, LR data, from scratch (no stand-in)",
    "source_only_scratch": "Source only, from scratch (no stand-in)",
    "oracle_lr_fractal": "Oracle, LR data, from fractal pretraining",
    "source_only_fractal": "Source only, from fractal pretraining",
    "oracle_hr": "Oracle: supervised on the target, HR data",
    "deeplabv2_lr": "DAFormer recipe (LR data)",
    "deeplabv2": "HRDA, DAFormer recipe",
    "dacs_lr": "DACS (LR data)",
    "dacs": "HRDA, DACS",
    "advseg_lr": "AdvSeg (LR data)",
    "advseg": "HRDA, AdvSeg",
    "minent_lr": "MinEnt (LR data)",
    "minent": "HRDA, MinEnt",
    "dg_daformer": "DAFormer (LR data), photometric + SHADE",
    "dg_hrda": "HRDA (detail 0.375), photometric + SHADE",
}


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
        # Six runs fit 30 minutes on 2 cores; the averaging-attention control (16 min on a core),
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


def notebook_rows(
    profile: str | Profile,
) -> dict[str, tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]]:
    """The rows and seeds each training notebook of `profile` trains, by notebook number, as
    (row keys, seeds) groups (what their `train_rows` calls ask for with the default
    parameters)."""
    prof = get_profile(profile)
    pairs = tuple(key for pair in prof.uda_methods.values() for key in pair)
    return {
        "00": ((prof.stand_in, prof.stand_in_seeds),),
        "03": ((("hrda",), prof.seeds[:1]),),
        "04": ((prof.crop_sizes, prof.seeds),),
        "05": ((prof.components, prof.component_seeds), (BLURRED_INPUT_ROWS, prof.seeds)),
        "06": ((prof.main, prof.seeds),),
        "09": ((pairs + prof.domain_generalization, prof.other_seeds),),
    }


def get_profile(name: str | Profile) -> Profile:
    """The profile called `name` (smoke, quick, synthetic, paper, rehearsal, rehearsal-fast)."""
    if isinstance(name, Profile):
        return name
    if name not in PROFILES:
        raise KeyError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]


def row_config(profile: str | Profile, key: str, seed: int | None = None) -> ExperimentConfig:
    """The experiment of row `key` under `profile` (its schedule length; `seed` if given)."""
    profile = get_profile(profile)
    if profile.benchmark == "smoke":
        rows = presets.smoke_rows()
        if key not in rows:
            raise KeyError(f"row {key!r} has no smoke version (its crops are under MiT's 32 px)")
        cfg = rows[key]
    elif profile.benchmark == "paper":
        cfg = presets.row_config(presets.PAPER, key)
    elif profile.benchmark == "rehearsal":
        cfg = rehearsal(presets.row_config(presets.PAPER, key))
    else:
        cfg = presets.row_config(presets.synthetic_benchmark(profile.data), key)
    if profile.iters:
        cfg = with_iters(cfg, profile.iters)
    return cfg if seed is None else replace(cfg, seed=seed)


def context_size(profile: str | Profile) -> int:
    """C: the full-resolution context crop of the profile's HRDA (1024 paper, 256 quick)."""
    return context_crop(row_config(profile, "hrda"))


def crop_label(cfg: ExperimentConfig, profile: str | Profile) -> str:
    """The paper's crop notation of a run, relative to the profile's context C: "LR1.0 + HR0.5"
    for HRDA (context and detail crop), "LR0.5" / "HR0.75" for a single-scale DAFormer."""
    context = context_size(profile)
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
    return f"{ROW_NAMES[key]} — {crop_label(cfg, profile)}"


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
