"""Presets: the experiments of the paper, as plain functions, on real data and on the synthetic
benchmark.

Every row of the paper's tables is a base experiment, the final HRDA of a `Benchmark`, changed
by small named functions of `hrda_lib.ablations` (`lr_data`, `sync_crop`, `fixed_attention`,
...) with sizes relative to its context crop C (1024 px in the paper). `ROWS` maps each row key
to such a function of the benchmark, so the same row runs on the paper's data (`PAPER`,
GTA -> Cityscapes, MiT-b5 from ImageNet) and on the synthetic benchmark (`synthetic_benchmark`,
every size / 4, MiT-b0 from the neutral-set stand-in of ImageNet, a 32-channel decoder, a
CPU-length schedule; `smoke`, the same for a few iterations on the tiny variant). `PRESETS`
names every experiment once (the names of `python -m hrda_lib.train --list`); nothing is parsed
out of a name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from hrda_lib import synthetic
from hrda_lib.ablations import (
    blurred_detail,
    context_scale,
    dacs,
    daformer_hr,
    daformer_lr,
    deeplabv2,
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
    square_crops,
    supervised_oracle,
)
from hrda_lib.config import (
    DataConfig,
    ExperimentConfig,
    MICConfig,
    ModelConfig,
    UDAConfig,
    with_iters,
)
from hrda_lib.optim import OptimizerConfig
from hrda_lib.rcs import RCSConfig
from hrda_lib.transforms import PipelineConfig, scaled_margins

SYNTHETIC_WEIGHTS = "pretrained/synthetic_mit_b0.pth"  # `python -m hrda_lib.pretrain`

# -- the paper's experiments (real data, GPU) ---------------------------------------------------


def gta_to_cityscapes_hrda() -> ExperimentConfig:
    """Table 1: final HRDA, GTA -> Cityscapes, MiT-b5, context 1024 (s_c 2), detail 512."""
    return ExperimentConfig(
        name="gta_to_cityscapes_hrda",
        pretrained="pretrained/mit_b5.pth",
        notes="HRDA Table 1 (73.8 mIoU, mean of 3 seeds)",
    )


def synthia_to_cityscapes_hrda() -> ExperimentConfig:
    """Table 1: Synthia -> Cityscapes (Synthia up-scaled to 2560x1520)."""
    source = PipelineConfig(scale=(2560, 1520), crop_size=(1024, 1024), cat_max_ratio=0.75)
    data = DataConfig(source="synthia", source_pipeline=source)
    return replace(
        gta_to_cityscapes_hrda(),
        name="synthia_to_cityscapes_hrda",
        data=data,
        notes="HRDA Table 1 (65.8 mIoU16)",
    )


def cityscapes_to_acdc_hrda(target: str = "acdc") -> ExperimentConfig:
    """Cityscapes -> ACDC (or Dark Zurich): no pseudo-label margins, target at 1920x1080."""
    source = PipelineConfig(scale=(2048, 1024), crop_size=(1024, 1024), cat_max_ratio=0.75)
    data = DataConfig(
        source="cityscapes",
        target=target,
        source_pipeline=source,
        target_pipeline=PipelineConfig(scale=(1920, 1080), crop_size=(1024, 1024)),
        test_pipeline=PipelineConfig(scale=(1920, 1080)),
    )
    return replace(
        gta_to_cityscapes_hrda(),
        name=f"cityscapes_to_{target}_hrda",
        data=data,
        notes="HRDA extension: 68.0 (ACDC) / 55.9 (Dark Zurich) mIoU on test",
    )


def cityscapes_to_darkzurich_hrda() -> ExperimentConfig:
    return replace(cityscapes_to_acdc_hrda("dark_zurich"), name="cityscapes_to_darkzurich_hrda")


def gta_to_cityscapes_mic_hrda() -> ExperimentConfig:
    """MIC(HRDA), GTA -> Cityscapes: masked target images, block 64, ratio 0.7 (75.9 mIoU)."""
    cfg = mic(gta_to_cityscapes_hrda(), block_size=64)
    return replace(cfg, name="gta_to_cityscapes_mic_hrda", seed=2, notes="MIC Table 1 (75.9 mIoU)")


def cityscapes_to_acdc_mic_hrda() -> ExperimentConfig:
    base = cityscapes_to_acdc_hrda()
    return replace(
        base,
        name="cityscapes_to_acdc_mic_hrda",
        uda=replace(base.uda, mic=MICConfig(mode="separate")),
    )


def cityscapes_oracle(crop: int = 1024) -> ExperimentConfig:
    """Figure 4 (right): supervised on Cityscapes at full resolution with crops of `crop`."""
    base = gta_to_cityscapes_hrda()
    cfg = supervised_oracle(replace(base, model=replace(base.model, multi_resolution=False)))
    return replace(square_crops(cfg, crop), name=f"cityscapes_oracle_crop{crop}")


def gta_dg_hrda() -> ExperimentConfig:
    """Domain generalization (HRDA extension, dg branch exp 50): HRDA with a 384 detail crop
    trained on GTA only (FD things, RCS, photometric augmentation, SHADE); evaluated on
    Cityscapes / BDD100K / Mapillary val: 57.41 / 49.11 / 61.16 mIoU."""
    cfg = domain_generalization(detail_crop(gta_to_cityscapes_hrda(), 384 / 1024))
    return replace(cfg, name="gta_dg_hrda", notes="HRDA DG: 55.90 mean mIoU")


def gta_dg_daformer() -> ExperimentConfig:
    """Domain generalization with DAFormer: half-resolution GTA (1280x720), 512 crops; evaluated
    on Cityscapes / BDD100K / Mapillary val: 52.65 / 47.89 / 54.66 mIoU."""
    cfg = domain_generalization(lr_data(gta_to_cityscapes_hrda()))
    return replace(cfg, name="gta_dg_daformer", notes="DAFormer DG: 51.73 mean mIoU")


# -- benchmarks: where the rows run -------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    """The final HRDA of one benchmark, from which every row derives, and what differs there."""

    prefix: str  # preset names are `<prefix>_<row>` unless `PAPER_NAMES` names the row
    hrda: Callable[[], ExperimentConfig]  # the final HRDA
    mic_block_size: int = 64  # MIC mask block, full-resolution px
    table2_model: Callable[[ExperimentConfig], ExperimentConfig] = deeplabv2  # Table 2's network
    sgd_lr_scale: float = 1.0  # AdvSeg / MinEnt learning rates x this


PAPER = Benchmark("gta_to_cityscapes", gta_to_cityscapes_hrda)


def synthetic_data(variant: str = "quick") -> DataConfig:
    """The synthetic benchmark's data for HRDA: native size (256x512 for `quick`), square H x H
    crops (the context crop C of the CPU budget, 1024 / 4), HRDA's margins (30, 240, 30, 30) and
    RCS `min_pixels` 3000 scaled by the pixel count relative to 1024 x 2048."""
    size = synthetic.VARIANTS[variant]()
    scale, crop = (size.width, size.height), (size.height, size.height)
    margins = scaled_margins((30, 240, 30, 30), (1024, 2048), (size.height, size.width))
    min_pixels = max(round(3000 * size.height * size.width / (1024 * 2048)), 1)
    return DataConfig(
        source="synthetic",
        target="synthetic",
        synthetic_variant=variant,
        source_pipeline=PipelineConfig(scale=scale, crop_size=crop, cat_max_ratio=0.75),
        target_pipeline=PipelineConfig(scale=scale, crop_size=crop, margins=margins),
        test_pipeline=PipelineConfig(scale=scale),
        rcs=RCSConfig(min_pixels=min_pixels),
        num_workers=0,
    )


SYNTHETIC_ITERS = 1500  # the synthetic rows' schedule (what a 30-minute demo on 2 cores allows)


def synthetic_hrda(variant: str = "quick", iters: int = SYNTHETIC_ITERS) -> ExperimentConfig:
    """HRDA on the synthetic benchmark: every size / 4, MiT-b0 from the stand-in of ImageNet
    (`pretrained/synthetic_mit_b0.pth`) with FD on thing classes as in the paper, a 32-channel
    decoder (256 in the paper; 32 makes a step 1.8x faster than 64 on a CPU), lr 3e-4; warm-up,
    the teacher's EMA and the validations keep the paper's share of the schedule (warm-up 1500 of
    40k iterations; alpha 0.999, a time constant of 1000 = 1/40 of it) but for six validations
    per run (the curves)."""
    data = synthetic_data(variant)
    context = data.source_pipeline.crop_size[0]
    paper = ExperimentConfig(iters=40000)
    cfg = ExperimentConfig(
        name="synthetic_hrda",
        model=ModelConfig(
            encoder="mit_b0", decoder_channels=32, detail_crop_size=(context // 2, context // 2)
        ),
        data=data,
        uda=UDAConfig(),
        optimizer=replace(OptimizerConfig(), lr=3e-4),
        pretrained=SYNTHETIC_WEIGHTS,
        test_window=(context, context),
        test_stride=(context // 2, context // 2),
        eval_interval=paper.iters // 6,
        checkpoint_interval=paper.iters // 6,
        notes="synthetic benchmark: sizes / 4, MiT-b0 from the neutral-set stand-in, 32-ch decoder",
    )
    return with_iters(cfg, iters)


def synthetic_benchmark(variant: str = "quick") -> Benchmark:
    """The rows on the synthetic benchmark: MiT-b0 and the DAFormer head stand in for DeepLabV2
    in Table 2 (ResNet-101 is too slow here), with the SGD learning rates x5 like AdamW's."""
    return Benchmark(
        "synthetic",
        partial(synthetic_hrda, variant),
        mic_block_size=16,
        table2_model=lambda cfg: cfg,
        sgd_lr_scale=5.0,
    )


# -- the rows of the paper's tables -------------------------------------------------------------

Row = Callable[[Benchmark], ExperimentConfig]


def _table2(method: str, hrda: bool) -> Row:
    def row(b: Benchmark) -> ExperimentConfig:
        cfg = b.table2_model(b.hrda() if hrda else lr_data(b.hrda()))
        cfg = replace(cfg, notes=f"HRDA Table 2: {method}, {'with HRDA' if hrda else 'LR data'}")
        if method == "dacs":
            return dacs(cfg)
        if method in ("advseg", "minent"):
            return output_alignment(cfg, method, b.sgd_lr_scale)
        return cfg  # the DAFormer recipe

    return row


ROWS: dict[str, Row] = {
    # Table 1 and the main comparison
    "hrda": lambda b: b.hrda(),
    "source_only": lambda b: source_only(b.hrda()),
    "daformer_lr": lambda b: lr_data(b.hrda()),  # LR1.0: the context at its LR scale
    "daformer_hr": lambda b: daformer_hr(b.hrda(), 0.5),  # HR0.5: one detail crop's size
    "mic_hrda": lambda b: mic(b.hrda(), b.mic_block_size),
    # Figure 4: crop sizes of DAFormer on LR and HR data, and the supervised oracles
    "daformer_lr0.25": lambda b: daformer_lr(b.hrda(), 0.25),
    "daformer_lr0.5": lambda b: daformer_lr(b.hrda(), 0.5),
    "daformer_lr0.75": lambda b: daformer_lr(b.hrda(), 0.75),
    "daformer_hr0.25": lambda b: daformer_hr(b.hrda(), 0.25),
    "daformer_hr0.75": lambda b: daformer_hr(b.hrda(), 0.75),
    "oracle_lr": lambda b: supervised_oracle(lr_data(b.hrda())),
    "oracle_hr": lambda b: supervised_oracle(
        replace(b.hrda(), model=replace(b.hrda().model, multi_resolution=False))
    ),
    # What the ImageNet stand-in buys: supervised on the target, and source only, from scratch
    "oracle_lr_scratch": lambda b: from_scratch(supervised_oracle(lr_data(b.hrda()))),
    "source_only_scratch": lambda b: from_scratch(source_only(b.hrda())),
    # ... and what formula-driven pretraining (FractalDB-style) buys instead of it
    "oracle_lr_fractal": lambda b: fractal_pretraining(supervised_oracle(lr_data(b.hrda()))),
    "source_only_fractal": lambda b: fractal_pretraining(source_only(b.hrda())),
    # Tables 3-5: context and detail crop sizes
    "hrda_context0.5": lambda b: hrda_context(b.hrda(), 0.5),
    "hrda_context0.75": lambda b: hrda_context(b.hrda(), 0.75),
    "detail0.25": lambda b: detail_crop(b.hrda(), 0.25),
    "detail0.375": lambda b: detail_crop(b.hrda(), 0.375),
    "hrda_context0.75_detail0.375": lambda b: hrda_context(detail_crop(b.hrda(), 0.375), 0.75),
    # Table 7: components (cumulative, as the official rows 3-5), and learned vs fixed attention
    "fixedatt": lambda b: fixed_attention(b.hrda()),
    "singleatt": lambda b: single_attention(b.hrda()),
    "nooverlap": lambda b: no_detail_overlap(b.hrda()),
    "ld0": lambda b: detail_loss(b.hrda(), 0.0),
    "nooverlap_ld0": lambda b: no_detail_overlap(detail_loss(b.hrda(), 0.0)),
    "fixedatt_nooverlap_ld0": lambda b: fixed_attention(
        no_detail_overlap(detail_loss(b.hrda(), 0.0))
    ),
    # Table 6: where the detail comes from; Figure S1: lambda_d; Table S1: context resolution
    "samescale": lambda b: same_scale(b.hrda()),
    "blurhr": lambda b: blurred_detail(b.hrda()),
    "ld0.3": lambda b: detail_loss(b.hrda(), 0.3),
    "ld0.5": lambda b: detail_loss(b.hrda(), 0.5),
    "sc0.25": lambda b: context_scale(hrda_context(b.hrda(), 0.5), 0.25),
    "sc0.75": lambda b: context_scale(hrda_context(b.hrda(), 0.5), 0.75),
    # Table 2: other UDA methods on LR data and with HRDA (the DAFormer recipe's pair: daformer)
    **{f"{m}_lr": _table2(m, False) for m in ("deeplabv2", "dacs", "advseg", "minent")},
    **{m: _table2(m, True) for m in ("deeplabv2", "dacs", "advseg", "minent")},
    # Domain generalization: HRDA with a 0.375 detail crop, and DAFormer on LR data
    "dg_hrda": lambda b: domain_generalization(detail_crop(b.hrda(), 0.375)),
    "dg_daformer": lambda b: domain_generalization(lr_data(b.hrda())),
}

# Rows of the paper whose preset names predate the `<prefix>_<row>` pattern.
PAPER_NAMES: dict[str, str] = {
    "hrda": "gta_to_cityscapes_hrda",
    "daformer_lr": "gta_to_cityscapes_daformer",
    "daformer_hr": "gta_to_cityscapes_daformer_hr_crop512",
    "mic_hrda": "gta_to_cityscapes_mic_hrda",
    "dg_hrda": "gta_dg_hrda",
    "dg_daformer": "gta_dg_daformer",
    "deeplabv2_lr": "gta_to_cityscapes_deeplabv2",
    **{f"{m}_lr": f"gta_to_cityscapes_{m}" for m in ("dacs", "advseg", "minent")},
    **{m: f"gta_to_cityscapes_hrda_{m}" for m in ("deeplabv2", "dacs", "advseg", "minent")},
    **{
        k: f"gta_to_cityscapes_hrda_{k}"
        for k in (
            "fixedatt",
            "singleatt",
            "nooverlap",
            "ld0",
            "ld0.3",
            "ld0.5",
            "nooverlap_ld0",
            "fixedatt_nooverlap_ld0",
            "samescale",
            "blurhr",
            "sc0.25",
            "sc0.75",
        )
    },
}


# Rows of the paper with a function of their own (a seed, the published number in the notes).
PAPER_FUNCTIONS: dict[str, Callable[[], ExperimentConfig]] = {
    "mic_hrda": gta_to_cityscapes_mic_hrda,
    "dg_hrda": gta_dg_hrda,
    "dg_daformer": gta_dg_daformer,
}


def row_config(benchmark: Benchmark, key: str) -> ExperimentConfig:
    """Row `key` of the paper's tables on `benchmark`, named as its preset."""
    if key not in ROWS:
        raise KeyError(f"unknown row {key!r}; rows: {', '.join(ROWS)}")
    if benchmark is PAPER and key in PAPER_FUNCTIONS:
        return PAPER_FUNCTIONS[key]()
    name = PAPER_NAMES.get(key) if benchmark is PAPER else None
    return replace(ROWS[key](benchmark), name=name or f"{benchmark.prefix}_{key}")


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
        cfg = row_config(benchmark, key)
        if key == "dg_hrda":  # tiny's 64 px context: the default 32 px detail crop
            cfg = replace(domain_generalization(benchmark.hrda()), name=cfg.name)
        if min(encoder_input_sizes(cfg)) < 32:
            continue
        rows[key] = smoke(cfg)
    return rows


def encoder_input_sizes(cfg: ExperimentConfig) -> tuple[int, ...]:
    """Side lengths (px) of what the encoder sees in training: the LR context and the detail
    crop for HRDA, the crop for a single-scale model."""
    crop = (cfg.data.sync_crop_size or cfg.data.source_pipeline.crop_size)[0]
    if not cfg.model.multi_resolution:
        return (crop,)
    return (round(crop * cfg.model.context_scale), cfg.model.detail_crop_size[0])


# -- the registry ---------------------------------------------------------------------------------


def _registry() -> dict[str, Callable[[], ExperimentConfig]]:
    presets: dict[str, Callable[[], ExperimentConfig]] = {
        f.__name__: f
        for f in (
            synthia_to_cityscapes_hrda,
            cityscapes_to_acdc_hrda,
            cityscapes_to_darkzurich_hrda,
            cityscapes_to_acdc_mic_hrda,
            gta_dg_hrda,
            gta_dg_daformer,
        )
    }
    for key in ROWS:
        presets[PAPER_NAMES.get(key, f"gta_to_cityscapes_{key}")] = partial(row_config, PAPER, key)
    for crop in (256, 768):
        presets[f"gta_to_cityscapes_daformer_hr_crop{crop}"] = partial(
            lambda c: replace(
                daformer_hr(gta_to_cityscapes_hrda(), c / 1024),
                name=f"gta_to_cityscapes_daformer_hr_crop{round(c)}",
            ),
            crop,
        )
    for crop in (128, 256, 384, 512):
        presets[f"gta_to_cityscapes_daformer_lr_crop{crop}"] = partial(
            lambda c: replace(
                daformer_lr(gta_to_cityscapes_hrda(), 2 * c / 1024),
                name=f"gta_to_cityscapes_daformer_lr_crop{c}",
            ),
            crop,
        )
    for crop in (256, 512, 768, 1024):
        presets[f"cityscapes_oracle_crop{crop}"] = partial(cityscapes_oracle, crop)
    for context in (512, 768):
        presets[f"gta_to_cityscapes_hrda_context{context}"] = partial(
            lambda c: replace(
                hrda_context(gta_to_cityscapes_hrda(), c / 1024),
                name=f"gta_to_cityscapes_hrda_context{c}",
            ),
            context,
        )
    quick = synthetic_benchmark("quick")
    for key in ROWS:
        presets[f"synthetic_{key}"] = partial(row_config, quick, key)
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
        raise KeyError(f"unknown preset {name!r}; `python -m hrda_lib.train --list` shows them all")
    return PRESETS[name]()
