"""The experiments everything starts from: the paper's (real data, a GPU) as plain functions, and
the benchmarks where the rows of its tables run (`Benchmark`: the paper's data, `PAPER`, and the
synthetic benchmark, `synthetic_benchmark`: every size / 4, MiT-b0 from the neutral-set stand-in
of ImageNet, a 32-channel decoder, a CPU-length schedule). The rows themselves, and the names of
every experiment, are `hrda_lib.presets`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from hrda_lib import synthetic
from hrda_lib.ablations import (
    deeplabv2,
    detail_crop,
    domain_generalization,
    lr_data,
    mic,
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

    prefix: str  # preset names are `<prefix>_<row>` (on PAPER: the row's `paper_name`)
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


def encoder_input_sizes(cfg: ExperimentConfig) -> tuple[int, ...]:
    """Side lengths (px) of what the encoder sees in training: the LR context and the detail
    crop for HRDA, the crop for a single-scale model."""
    crop = (cfg.data.sync_crop_size or cfg.data.source_pipeline.crop_size)[0]
    if not cfg.model.multi_resolution:
        return (crop,)
    return (round(crop * cfg.model.context_scale), cfg.model.detail_crop_size[0])
