"""Presets: the rows of the paper's tables as one table, and a name for every experiment.

Every row is a base experiment, the final HRDA of a `Benchmark` (`hrda_lib.experiments`),
changed by small named functions of `hrda_lib.ablations` (`lr_data`, `fixed_attention`, ...)
with sizes relative to its context crop C (1024 px in the paper), so the same row runs on the
paper's data (`PAPER`) and on the synthetic benchmark. `ROWS` holds everything known about a
row, in one place: its key, the name a person reads, how to build it, its preset name on the
paper's data, the published number and the claims it enters; the names, labels, published
numbers and claims that the notebooks use are derived from it. `PRESETS` names every experiment
once (the names of `python -m hrda_lib.train --list`); nothing is parsed out of a name.

A new row is one `Row` entry below (and, for a new kind of change, a function in `ablations`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from hrda_lib.ablations import (
    blurred_detail,
    context_scale,
    dacs,
    daformer_hr,
    daformer_lr,
    detail_crop,
    detail_loss,
    domain_generalization,
    fixed_attention,
    fractal_pretraining,
    from_scratch,
    hrda_context,
    lr_data,
    mic,
    no_detail_overlap,
    output_alignment,
    same_scale,
    single_attention,
    source_only,
    supervised_oracle,
)
from hrda_lib.config import ExperimentConfig, with_iters
from hrda_lib.errors import UnknownNameError
from hrda_lib.experiments import (
    PAPER,
    Benchmark,
    cityscapes_oracle,
    cityscapes_to_acdc_hrda,
    cityscapes_to_acdc_mic_hrda,
    cityscapes_to_darkzurich_hrda,
    encoder_input_sizes,
    gta_dg_daformer,
    gta_dg_hrda,
    gta_to_cityscapes_hrda,
    gta_to_cityscapes_mic_hrda,
    synthetic_benchmark,
    synthia_to_cityscapes_hrda,
)

Build = Callable[[Benchmark], ExperimentConfig]

PAPER_DATA = "GTA→Cityscapes val (19 classes)"
CITYSCAPES_VAL = "Cityscapes val (19 classes)"


@dataclass(frozen=True)
class Published:
    """A published mIoU (%) of a row: what the source calls it, what it was measured on (never
    our data) and where it is stated (`docs/paper_numbers.md`)."""

    method: str
    miou: float
    on: str
    source: str


@dataclass(frozen=True)
class Row:
    """One row of the paper's tables."""

    key: str
    label: str  # what a person reads in tables and legends
    build: Build  # the row on a benchmark
    paper_name: str | None = None  # its preset name on the paper's data (gta_to_cityscapes_<key>)
    paper_preset: Callable[[], ExperimentConfig] | None = None  # a paper preset of its own
    published: Published | None = None
    claims: tuple[tuple[str, str], ...] = ()  # (claim, baseline key): this row − the baseline


def _table2(method: str, hrda: bool) -> Build:
    def build(b: Benchmark) -> ExperimentConfig:
        cfg = b.table2_model(b.hrda() if hrda else lr_data(b.hrda()))
        cfg = replace(cfg, notes=f"HRDA Table 2: {method}, {'with HRDA' if hrda else 'LR data'}")
        if method == "dacs":
            return dacs(cfg)
        if method in ("advseg", "minent"):
            return output_alignment(cfg, method, b.sgd_lr_scale)
        return cfg  # the DAFormer recipe

    return build


def _hrda(b: Benchmark) -> ExperimentConfig:
    return b.hrda()


def _oracle_hr(b: Benchmark) -> ExperimentConfig:
    hrda = b.hrda()
    return supervised_oracle(replace(hrda, model=replace(hrda.model, multi_resolution=False)))


def _then(*changes: Callable[[ExperimentConfig], ExperimentConfig]) -> Build:
    """The benchmark's HRDA changed by `changes`, the last one first (as written nested)."""

    def build(b: Benchmark) -> ExperimentConfig:
        cfg = b.hrda()
        for change in reversed(changes):
            cfg = change(cfg)
        return cfg

    return build


def _ablation(key: str, label: str, *changes, claims: tuple = ()) -> Row:
    """A row of HRDA's ablations (Tables 6, 7, S1, Figure S1), named on the paper's data
    `gta_to_cityscapes_hrda_<key>`."""
    return Row(key, label, _then(*changes), f"gta_to_cityscapes_hrda_{key}", claims=claims)


TABLE2_LABELS = {
    "deeplabv2": "DAFormer recipe",
    "dacs": "DACS",
    "advseg": "AdvSeg",
    "minent": "MinEnt",
}

ROW_TABLE: tuple[Row, ...] = (
    # Table 1 and the main comparison
    Row(
        "hrda",
        "HRDA",
        _hrda,
        paper_name="gta_to_cityscapes_hrda",
        published=Published("HRDA", 73.8, PAPER_DATA, "HRDA README, 3 seeds"),
        claims=(
            ("HRDA − DAFormer (LR data)", "daformer_lr"),
            ("HRDA − DAFormer (HR crops)", "daformer_hr"),
            ("learned − averaging attention", "fixedatt"),
            ("HRDA − Source only", "source_only"),
            ("HR − blurred detail crop (Table 6)", "blurhr"),
            ("HR − same-scale detail crop (Table 6)", "samescale"),
            ("λ_d 0.1 − λ_d 0 (Figure S1)", "ld0"),
            ("detail HR0.5 − HR0.25 (Table 4)", "detail0.25"),
            ("context LR1.0 − LR0.5 (Table 3)", "hrda_context0.5"),
            ("context LR1.0 − LR0.75 (Table 3)", "hrda_context0.75"),
            ("HRDA − DAFormer small HR crops HR0.25 (Figure 4)", "daformer_hr0.25"),
        ),
    ),
    Row("source_only", "Source only", _then(source_only)),
    Row(
        "daformer_lr",
        "DAFormer (LR data)",
        _then(lr_data),  # LR1.0: the context at its LR scale
        paper_name="gta_to_cityscapes_daformer",
        published=Published("DAFormer", 68.3, PAPER_DATA, "HRDA README, 3 seeds"),
        claims=(
            ("DAFormer LR data − HR crops (context matters)", "daformer_hr"),
            ("DAFormer LR data − small HR crops HR0.25 (Figure 4)", "daformer_hr0.25"),
            ("DAFormer LR data 1.0 − 0.5 crops (Figure 4)", "daformer_lr0.5"),
        ),
    ),
    Row(
        "daformer_hr",
        "DAFormer (HR crops)",
        _then(partial(daformer_hr, crop=0.5)),  # HR0.5: one detail crop's size
        paper_name="gta_to_cityscapes_daformer_hr_crop512",
    ),
    Row(
        "mic_hrda",
        "MIC (HRDA)",
        lambda b: mic(b.hrda(), b.mic_block_size),
        paper_preset=gta_to_cityscapes_mic_hrda,
        published=Published("MIC (HRDA)", 75.9, PAPER_DATA, "MIC README, 3 seeds"),
        claims=(("MIC(HRDA) − HRDA", "hrda"),),
    ),
    # Figure 4: crop sizes of DAFormer on LR and HR data, and the supervised oracles
    *(
        Row(f"daformer_lr{c}", "DAFormer (LR data)", _then(partial(daformer_lr, crop=float(c))))
        for c in ("0.25", "0.5", "0.75")
    ),
    Row("daformer_hr0.25", "DAFormer (HR crops)", _then(partial(daformer_hr, crop=0.25))),
    Row(
        "daformer_hr0.75",
        "DAFormer (HR crops)",
        _then(partial(daformer_hr, crop=0.75)),
        claims=(("DAFormer HR crops 0.75 − 0.5 (Figure 4)", "daformer_hr"),),
    ),
    Row(
        "oracle_lr",
        "Oracle: supervised on the target, LR data",
        _then(supervised_oracle, lr_data),
        published=Published(
            "supervised oracle, LR (DAFormer)", 77.6, CITYSCAPES_VAL, "DAFormer paper"
        ),
    ),
    Row(
        "oracle_hr",
        "Oracle: supervised on the target, HR data",
        _oracle_hr,
        published=Published("supervised oracle, HR", 81.2, CITYSCAPES_VAL, "lhoyer/HRDA issue 6"),
        claims=(("oracle HR − oracle LR (resolution matters)", "oracle_lr"),),
    ),
    # What the ImageNet stand-in buys: supervised on the target, and source only, from scratch
    Row(
        "oracle_lr_scratch",
        "Oracle, LR data, from scratch (no stand-in)",
        _then(from_scratch, supervised_oracle, lr_data),
    ),
    Row(
        "source_only_scratch",
        "Source only, from scratch (no stand-in)",
        _then(from_scratch, source_only),
    ),
    # ... and what formula-driven pretraining (FractalDB-style) buys instead of it
    Row(
        "oracle_lr_fractal",
        "Oracle, LR data, from fractal pretraining",
        _then(fractal_pretraining, supervised_oracle, lr_data),
    ),
    Row(
        "source_only_fractal",
        "Source only, from fractal pretraining",
        _then(fractal_pretraining, source_only),
    ),
    # Tables 3-5: context and detail crop sizes
    Row("hrda_context0.5", "HRDA", _then(partial(hrda_context, context=0.5))),
    Row("hrda_context0.75", "HRDA", _then(partial(hrda_context, context=0.75))),
    Row("detail0.25", "HRDA", _then(partial(detail_crop, detail=0.25))),
    Row("detail0.375", "HRDA", _then(partial(detail_crop, detail=0.375))),
    Row(
        "hrda_context0.75_detail0.375",
        "HRDA",
        _then(partial(hrda_context, context=0.75), partial(detail_crop, detail=0.375)),
        claims=(("HRDA LR0.75 + HR0.375 − DAFormer HR0.75 (Table 5)", "daformer_hr0.75"),),
    ),
    # Table 7: components (cumulative, as the official rows 3-5), and learned vs fixed attention
    _ablation("fixedatt", "HRDA, averaging (attention 0.5)", fixed_attention),
    _ablation("singleatt", "HRDA, 1-channel attention", single_attention),
    _ablation("nooverlap", "HRDA, non-overlapping detail slide", no_detail_overlap),
    _ablation(
        "ld0",
        "HRDA, λ_d = 0",
        partial(detail_loss, weight=0.0),
        claims=(("overlapping − non-overlapping detail slide (Table 7)", "nooverlap_ld0"),),
    ),
    _ablation(
        "nooverlap_ld0",
        "HRDA, λ_d = 0, no detail overlap",
        no_detail_overlap,
        partial(detail_loss, weight=0.0),
        claims=(("learned − averaging, no overlap, λ_d 0 (Table 7)", "fixedatt_nooverlap_ld0"),),
    ),
    _ablation(
        "fixedatt_nooverlap_ld0",
        "HRDA, λ_d = 0, no overlap, averaging",
        fixed_attention,
        no_detail_overlap,
        partial(detail_loss, weight=0.0),
    ),
    # Table 6: where the detail comes from; Figure S1: lambda_d; Table S1: context resolution
    _ablation("samescale", "HRDA, detail at the context's resolution", same_scale),
    _ablation("blurhr", "HRDA, blurred detail crop", blurred_detail),
    _ablation("ld0.3", "HRDA, λ_d = 0.3", partial(detail_loss, weight=0.3)),
    _ablation("ld0.5", "HRDA, λ_d = 0.5", partial(detail_loss, weight=0.5)),
    _ablation(
        "sc0.25",
        "HRDA, context scale 0.25",
        partial(context_scale, scale=0.25),
        partial(hrda_context, context=0.5),
    ),
    _ablation(
        "sc0.75",
        "HRDA, context scale 0.75",
        partial(context_scale, scale=0.75),
        partial(hrda_context, context=0.5),
    ),
    # Table 2: other UDA methods on LR data and with HRDA (the DAFormer recipe's pair: daformer)
    *(
        Row(
            f"{m}_lr",
            f"{label} (LR data)",
            _table2(m, False),
            paper_name=f"gta_to_cityscapes_{m}",
        )
        for m, label in TABLE2_LABELS.items()
    ),
    *(
        Row(m, f"HRDA, {label}", _table2(m, True), paper_name=f"gta_to_cityscapes_hrda_{m}")
        for m, label in TABLE2_LABELS.items()
    ),
    # Domain generalization: HRDA with a 0.375 detail crop, and DAFormer on LR data
    Row(
        "dg_hrda",
        "HRDA (detail 0.375), photometric + SHADE",
        _then(domain_generalization, partial(detail_crop, detail=0.375)),
        paper_preset=gta_dg_hrda,
    ),
    Row(
        "dg_daformer",
        "DAFormer (LR data), photometric + SHADE",
        _then(domain_generalization, lr_data),
        paper_preset=gta_dg_daformer,
    ),
)

# -- derived: what the rest of the code reads ------------------------------------------------------

ROWS: dict[str, Row] = {row.key: row for row in ROW_TABLE}
ROW_NAMES: dict[str, str] = {row.key: row.label for row in ROW_TABLE}
# Differences of mean mIoU that the papers' claims rest on: (claim, row, baseline row).
CLAIMS: tuple[tuple[str, str, str], ...] = tuple(
    (claim, row.key, base) for row in ROW_TABLE for claim, base in row.claims
)


def require_rows(keys, where: str) -> None:
    """Raise `UnknownNameError` naming `where` if a key of `keys` is no row of `ROWS` (a table,
    profile or notebook that names a row checks it so when it is made)."""
    unknown = [key for key in keys if key not in ROWS]
    if unknown:
        raise UnknownNameError(f"{where} names rows that presets.ROWS lacks: {', '.join(unknown)}")


require_rows([base for _, _, base in CLAIMS], "a claim of presets.ROW_TABLE")


def paper_name(key: str) -> str:
    """Row `key`'s preset name on the paper's data."""
    row = ROWS[key]
    if row.paper_preset is not None:
        return row.paper_preset.__name__
    return row.paper_name or f"gta_to_cityscapes_{key}"


def build_row(benchmark: Benchmark, key: str) -> ExperimentConfig:
    """Row `key` of the paper's tables on `benchmark`, named as its preset."""
    if key not in ROWS:
        raise UnknownNameError(f"unknown row {key!r}; rows: {', '.join(ROWS)}")
    row = ROWS[key]
    if benchmark is PAPER and row.paper_preset is not None:
        return row.paper_preset()
    name = paper_name(key) if benchmark is PAPER else f"{benchmark.prefix}_{key}"
    return replace(row.build(benchmark), name=name)


def smoke(cfg: ExperimentConfig) -> ExperimentConfig:
    """A row for tests: 4 iterations, evaluated and checkpointed along the way."""
    cfg = with_iters(cfg, 4)
    cfg = replace(
        cfg,
        name=cfg.name.replace("synthetic_", "smoke_", 1),
        eval_interval=4,
        checkpoint_interval=2,
    )
    if cfg.uda.mic is not None:
        cfg = replace(cfg, uda=replace(cfg.uda, mic=replace(cfg.uda.mic, block_size=8)))
    return cfg


def smoke_rows() -> dict[str, ExperimentConfig]:
    """Every row on the tiny variant for 4 iterations (seconds each), except those whose
    encoder input would fall under MiT's 32 px minimum at tiny's 64 px context."""
    benchmark = synthetic_benchmark("tiny")
    rows = {}
    for key in ROWS:
        cfg = build_row(benchmark, key)
        if key == "dg_hrda":  # tiny's 64 px context: the default 32 px detail crop
            cfg = replace(domain_generalization(benchmark.hrda()), name=cfg.name)
        if min(encoder_input_sizes(cfg)) < 32:
            continue
        rows[key] = smoke(cfg)
    return rows


# -- the registry ---------------------------------------------------------------------------------


def _sized(change: Callable[[ExperimentConfig], ExperimentConfig], name: str) -> ExperimentConfig:
    """The paper's HRDA changed by `change` (a crop size in pixels), named `name`."""
    return replace(change(gta_to_cityscapes_hrda()), name=name)


def _registry() -> dict[str, Callable[[], ExperimentConfig]]:
    """Every experiment by name: the paper's own presets, every row on the paper's data and on
    the synthetic benchmark, the crop sizes of Figure 4 and Table 3 in pixels, the smoke rows."""
    presets: dict[str, Callable[[], ExperimentConfig]] = {
        f.__name__: f
        for f in (
            synthia_to_cityscapes_hrda,
            cityscapes_to_acdc_hrda,
            cityscapes_to_darkzurich_hrda,
            cityscapes_to_acdc_mic_hrda,
        )
    }
    for key in ROWS:
        presets[paper_name(key)] = partial(build_row, PAPER, key)
    sized = {
        **{
            f"gta_to_cityscapes_daformer_hr_crop{c}": partial(daformer_hr, crop=c / 1024)
            for c in (256, 768)
        },
        **{
            f"gta_to_cityscapes_daformer_lr_crop{c}": partial(daformer_lr, crop=2 * c / 1024)
            for c in (128, 256, 384, 512)
        },
        **{
            f"gta_to_cityscapes_hrda_context{c}": partial(hrda_context, context=c / 1024)
            for c in (512, 768)
        },
    }
    for name, change in sized.items():
        presets[name] = partial(_sized, change, name)
    for crop in (256, 512, 768, 1024):
        presets[f"cityscapes_oracle_crop{crop}"] = partial(cityscapes_oracle, crop)
    quick = synthetic_benchmark("quick")
    for key in ROWS:
        presets[f"synthetic_{key}"] = partial(build_row, quick, key)
    for key in smoke_rows():
        presets[f"smoke_{key}"] = partial(lambda k: smoke_rows()[k], key)
    return presets


PRESETS: dict[str, Callable[[], ExperimentConfig]] = _registry()


def list_presets() -> list[str]:
    """Every preset name, one per experiment."""
    return list(PRESETS)


def get_preset(name: str) -> ExperimentConfig:
    """The ExperimentConfig of a preset name (see `list_presets`)."""
    if name not in PRESETS:
        raise UnknownNameError(
            f"unknown preset {name!r}; `python -m hrda_lib.train --list` shows them all"
        )
    return PRESETS[name]()
