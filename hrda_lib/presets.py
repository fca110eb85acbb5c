"""Presets: one function per experiment of the paper, and scaled-down synthetic benchmark rows.

Paper presets (reference spec 7) train MiT-b5 on real data at full resolution. Synthetic presets
run the same rows on the procedurally generated benchmark on a CPU: every size divided by 4 (the
256x512 images stand for 1024x2048, context crops 256 for 1024, detail crops 128 for 512, test
windows 256/128 for 1024/512), MiT-b0 from random init (no ImageNet weights can be downloaded
here), a 64-channel decoder, a few hundred iterations with the schedule, warm-up and EMA rate
scaled to that length, and no feature distance (its "ImageNet" model would be the random init).
Smoke presets run the synthetic rows for a few iterations on the `tiny` variant (tests).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial

from hrda_lib import synthetic
from hrda_lib.config import ModelConfig
from hrda_lib.experiment import DataConfig, ExperimentConfig, MICConfig, UDAConfig
from hrda_lib.optim import OptimizerConfig, sgd_config
from hrda_lib.rcs import RCSConfig
from hrda_lib.shade import SHADEConfig
from hrda_lib.transforms import PipelineConfig

# -- paper presets (real data, GPU) ------------------------------------------------------------


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
    data = DataConfig(
        source="cityscapes",
        target=target,
        source_pipeline=PipelineConfig(
            scale=(2048, 1024), crop_size=(1024, 1024), cat_max_ratio=0.75
        ),
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
    base = gta_to_cityscapes_hrda()
    return replace(
        base,
        name="gta_to_cityscapes_mic_hrda",
        seed=2,
        uda=replace(base.uda, mic=MICConfig()),
        notes="MIC Table 1 (75.9 mIoU)",
    )


def cityscapes_to_acdc_mic_hrda() -> ExperimentConfig:
    base = cityscapes_to_acdc_hrda()
    return replace(
        base,
        name="cityscapes_to_acdc_mic_hrda",
        uda=replace(base.uda, mic=MICConfig(mode="separate")),
    )


def _lr_data(cfg: ExperimentConfig) -> ExperimentConfig:
    """DAFormer's half-resolution data: GTA 1280x720 / Cityscapes 1024x512 with 512 crops."""
    data = DataConfig(
        source_pipeline=PipelineConfig(scale=(1280, 720), crop_size=(512, 512), cat_max_ratio=0.75),
        target_pipeline=PipelineConfig(
            scale=(1024, 512), crop_size=(512, 512), margins=(30, 240, 30, 30)
        ),
        test_pipeline=PipelineConfig(scale=(1024, 512)),
        rcs=RCSConfig(min_crop_ratio=0.5),
    )
    return replace(cfg, data=data, test_window=(512, 512), test_stride=(256, 256))


def gta_to_cityscapes_daformer() -> ExperimentConfig:
    """DAFormer (LR1.0): single-scale on half-resolution data (68.3 mIoU)."""
    base = gta_to_cityscapes_hrda()
    model = replace(base.model, multi_resolution=False)
    return _lr_data(replace(base, name="gta_to_cityscapes_daformer", model=model))


def _square_crops(cfg: ExperimentConfig, crop: int) -> ExperimentConfig:
    """`cfg` with source and target crops of `crop`, and a test window of the same size."""
    data = replace(
        cfg.data,
        source_pipeline=replace(cfg.data.source_pipeline, crop_size=(crop, crop)),
        target_pipeline=replace(cfg.data.target_pipeline, crop_size=(crop, crop)),
    )
    return replace(cfg, data=data, test_window=(crop, crop), test_stride=(crop // 2, crop // 2))


def gta_to_cityscapes_daformer_hr_crop(crop: int = 512) -> ExperimentConfig:
    """Table 7 row 1 / Figure 4: single-scale DAFormer on full-resolution crops of `crop`."""
    base = gta_to_cityscapes_hrda()
    model = replace(base.model, multi_resolution=False)
    cfg = replace(base, name=f"gta_to_cityscapes_daformer_hr_crop{crop}", model=model)
    return _square_crops(cfg, crop)


def gta_to_cityscapes_daformer_lr_crop(crop: int = 512) -> ExperimentConfig:
    """Figure 4 (left): single-scale DAFormer on half-resolution data with crops of `crop`."""
    cfg = replace(gta_to_cityscapes_daformer(), name=f"gta_to_cityscapes_daformer_lr_crop{crop}")
    return _square_crops(cfg, crop)


def cityscapes_oracle(crop: int = 1024) -> ExperimentConfig:
    """Figure 4 (right): supervised on Cityscapes (full resolution, crops of `crop`), no UDA."""
    base = gta_to_cityscapes_daformer_hr_crop(crop)
    source = PipelineConfig(scale=(2048, 1024), crop_size=(crop, crop), cat_max_ratio=0.75)
    data = replace(base.data, source="cityscapes", source_pipeline=source, rcs=None)
    return replace(base, name=f"cityscapes_oracle_crop{crop}", data=data,
                   uda=replace(base.uda, method="source_only", fd_weight=0.0))  # fmt: skip


def gta_to_cityscapes_hrda_context(context: int) -> ExperimentConfig:
    """Table 3: HRDA with a smaller context crop (the sync crop of the official ablation).

    With detail == context (512) the official code also supervises the context branch
    (lambda_lr = lambda_d) and computes FD on both scales; so does this preset.
    """
    base = gta_to_cityscapes_hrda()
    model, uda = base.model, base.uda
    if context == model.detail_crop_size[0]:
        model = replace(model, lr_loss_weight=model.detail_loss_weight)
        uda = replace(uda, fd_on_detail=True)
    cfg = replace(base, name=f"gta_to_cityscapes_hrda_context{context}", model=model, uda=uda)
    return _square_crops(cfg, context)


def gta_to_cityscapes_source_only() -> ExperimentConfig:
    base = gta_to_cityscapes_hrda()
    return replace(
        base, name="gta_to_cityscapes_source_only", uda=replace(base.uda, method="source_only")
    )


def _whole_inference(cfg: ExperimentConfig) -> ExperimentConfig:
    """Table 2's `whole` test mode: one outer window over the test image (HRDA still slides its
    detail crops inside it)."""
    long, short = cfg.data.test_pipeline.scale
    return replace(cfg, test_window=(short, long), test_stride=(short, long))


def _deeplabv2(cfg: ExperimentConfig) -> ExperimentConfig:
    """`cfg` with DeepLabV2: ResNet-101 V1c (ImageNet) and the reduced head (`dlv2red`)."""
    model = ModelConfig(
        encoder="resnet101_v1c", head="dlv2", multi_resolution=cfg.model.multi_resolution
    )
    return _whole_inference(replace(cfg, model=model, pretrained="pretrained/resnet101_v1c.pth"))


def _dacs(cfg: ExperimentConfig) -> ExperimentConfig:
    """DACS: alpha 0.99 and neither FD, RCS nor pseudo-label margins."""
    data = replace(
        cfg.data, rcs=None, target_pipeline=replace(cfg.data.target_pipeline, margins=None)
    )
    return replace(cfg, data=data, uda=replace(cfg.uda, ema_alpha=0.99, fd_weight=0.0))


def _output_alignment(cfg: ExperimentConfig, method: str) -> ExperimentConfig:
    """AdvSeg / MinEnt: SGD, photometric source augmentation (`gtaCAug`), no FD, RCS, margins."""
    data = replace(
        cfg.data,
        rcs=None,
        source_pipeline=replace(cfg.data.source_pipeline, photometric=True),
        target_pipeline=replace(cfg.data.target_pipeline, margins=None),
    )
    optimizer = replace(sgd_config(), warmup_iters=cfg.optimizer.warmup_iters,
                        max_iters=cfg.optimizer.max_iters)  # fmt: skip
    uda = replace(cfg.uda, method=method, fd_weight=0.0)
    return replace(cfg, data=data, uda=uda, optimizer=optimizer)


TABLE2_METHODS: dict[str, Callable[[ExperimentConfig], ExperimentConfig]] = {
    "daformer": lambda cfg: cfg,  # the DAFormer recipe (FD, RCS, margins), AdamW
    "dacs": _dacs,
    "advseg": lambda cfg: _output_alignment(cfg, "advseg"),
    "minent": lambda cfg: _output_alignment(cfg, "minent"),
}
TABLE2_NAMES = {"daformer": "deeplabv2", "dacs": "dacs", "advseg": "advseg", "minent": "minent"}


def table2_preset(method: str, hrda: bool) -> ExperimentConfig:
    """Table 2: a UDA method with DeepLabV2, on half-resolution data (512 crops) or with HRDA.

    Reference spec 7, exp 41: AdvSeg and MinEnt with SGD and the `gtaCAug` source, DACS with
    AdamW and alpha 0.99, the DAFormer recipe with RCS (min crop ratio 0.5 LR / 2.0 HR); `whole`
    inference. HRDA with DACS: 59.4 mIoU; with the DAFormer recipe: about 63.
    """
    base = gta_to_cityscapes_hrda()
    if not hrda:
        base = _lr_data(replace(base, model=replace(base.model, multi_resolution=False)))
    prefix = "gta_to_cityscapes_hrda_" if hrda else "gta_to_cityscapes_"
    cfg = TABLE2_METHODS[method](_deeplabv2(base))
    return replace(cfg, name=prefix + TABLE2_NAMES[method], notes=f"HRDA Table 2: {method}",
                   extra={"table": "2", "method": method, "hrda": hrda})  # fmt: skip


def _domain_generalization(cfg: ExperimentConfig, name: str) -> ExperimentConfig:
    """Source only with photometric augmentation and SHADE style hallucination; the target is
    only validated on (Cityscapes val; BDD100K and Mapillary with `evaluate --dataset`)."""
    data = replace(cfg.data, source_pipeline=replace(cfg.data.source_pipeline, photometric=True))
    uda = replace(cfg.uda, method="source_only", shade=SHADEConfig())
    return replace(cfg, name=name, data=data, uda=uda)


def gta_dg_hrda() -> ExperimentConfig:
    """Domain generalization (HRDA extension, dg branch exp 50): HRDA with a 384 detail crop
    trained on GTA only (FD things, RCS, photometric augmentation, SHADE); evaluated on
    Cityscapes / BDD100K / Mapillary val: 57.41 / 49.11 / 61.16 mIoU."""
    base = gta_to_cityscapes_hrda()
    base = replace(base, model=replace(base.model, detail_crop_size=(384, 384)))
    return replace(_domain_generalization(base, "gta_dg_hrda"), notes="HRDA DG: 55.90 mean mIoU")


def gta_dg_daformer() -> ExperimentConfig:
    """Domain generalization with DAFormer: half-resolution GTA (1280x720), 512 crops; evaluated
    on Cityscapes / BDD100K / Mapillary val: 52.65 / 47.89 / 54.66 mIoU."""
    cfg = _domain_generalization(gta_to_cityscapes_daformer(), "gta_dg_daformer")
    return replace(cfg, notes="DAFormer DG: 51.73 mean mIoU")


# Ablation suffixes of experiments.py (spec 2.7), as ModelConfig changes.
ABLATIONS: dict[str, dict] = {
    "fixedatt": dict(attention="fixed"),
    "singleatt": dict(attention="single"),
    "nooverlap": dict(detail_slide_overlapping=False),
    "blurhr": dict(blur_detail=True),
    "samescale": dict(context_scale=1.0),
    "sc0.25": dict(context_scale=0.25),
    "sc0.75": dict(context_scale=0.75),
    "ld0": dict(detail_loss_weight=0.0),
    "ld0.3": dict(detail_loss_weight=0.3),
    "ld0.5": dict(detail_loss_weight=0.5),
}


# -- synthetic presets (CPU) -------------------------------------------------------------------


def synthetic_hrda(variant: str = "quick", iters: int = 300) -> ExperimentConfig:
    """HRDA on the synthetic benchmark, every size / 4 (see the module docstring)."""
    size = synthetic.VARIANTS[variant]()
    context = size.height  # a square context crop of the full image height
    detail = context // 2
    data = DataConfig(
        source="synthetic",
        target="synthetic",
        synthetic_variant=variant,
        source_pipeline=synthetic.source_pipeline(size),
        target_pipeline=synthetic.target_pipeline(size, synthetic.paper_margins(size)),
        test_pipeline=synthetic.test_pipeline(size),
        rcs=synthetic.rcs_config(size),
        num_workers=0,
    )
    return ExperimentConfig(
        name="synthetic_hrda",
        model=ModelConfig(encoder="mit_b0", decoder_channels=64, detail_crop_size=(detail, detail)),
        data=data,
        uda=UDAConfig(ema_alpha=0.99, fd_weight=0.0),
        optimizer=OptimizerConfig(lr=3e-4, warmup_iters=max(iters * 3 // 80, 1), max_iters=iters),
        iters=iters,
        test_window=(context, context),
        test_stride=(context // 2, context // 2),
        eval_interval=max(iters // 3, 1),
        checkpoint_interval=max(iters // 3, 1),
        notes="synthetic benchmark: sizes / 4, MiT-b0 random init, 64-ch decoder, no FD",
    )


def _single_scale(cfg: ExperimentConfig, context_scale: float, crop: int) -> ExperimentConfig:
    """DAFormer baseline: images scaled by `context_scale`, crops of `crop` (scaled pixels)."""

    def scaled(p: PipelineConfig, crop_size) -> PipelineConfig:
        scale = (round(p.scale[0] * context_scale), round(p.scale[1] * context_scale))
        return replace(p, scale=scale, crop_size=crop_size)

    data = cfg.data
    data = replace(
        data,
        source_pipeline=scaled(data.source_pipeline, (crop, crop)),
        target_pipeline=scaled(data.target_pipeline, (crop, crop)),
        test_pipeline=scaled(data.test_pipeline, None),
    )
    return replace(
        cfg,
        data=data,
        model=replace(cfg.model, multi_resolution=False),
        test_window=(crop, crop),
        test_stride=(crop // 2, crop // 2),
    )


def _synthetic_table2(hrda: ExperimentConfig) -> dict[str, ExperimentConfig]:
    """Table 2 on the synthetic benchmark: DACS, AdvSeg and MinEnt with HRDA and on LR data (as
    `daformer_lr`; the DAFormer-recipe pair is `daformer_lr` / `hrda`). MiT-b0 and the DAFormer
    head stand in for DeepLabV2 (ResNet-101 is too slow here), and the SGD and discriminator
    learning rates are scaled x5 like the AdamW one."""
    context = hrda.test_window[0]
    rows = {}
    for method in ("dacs", "advseg", "minent"):
        cfg = TABLE2_METHODS[method](hrda)
        if method != "dacs":
            adversarial = cfg.uda.adversarial
            optimizer = replace(cfg.optimizer, lr=cfg.optimizer.lr * 5)
            uda = replace(cfg.uda, adversarial=replace(adversarial, lr=adversarial.lr * 5))
            cfg = replace(cfg, optimizer=optimizer, uda=uda)
        rows[method] = cfg
        rows[f"{method}_lr"] = _single_scale(cfg, 0.5, context // 2)
    return rows


def synthetic_rows(variant: str = "quick", iters: int = 300) -> dict[str, ExperimentConfig]:
    """The main comparison and the ablation rows on the synthetic benchmark."""
    hrda = synthetic_hrda(variant, iters)
    context = hrda.test_window[0]
    detail = hrda.model.detail_crop_size[0]
    rows = {
        "hrda": hrda,
        "source_only": replace(hrda, uda=replace(hrda.uda, method="source_only")),
        # DAFormer on LR data: the context crop seen at its LR scale, as HRDA's context branch.
        "daformer_lr": _single_scale(hrda, 0.5, context // 2),
        # DAFormer on HR crops of the detail size (same memory as one HRDA branch).
        "daformer_hr": _single_scale(hrda, 1.0, detail),
        "mic_hrda": replace(hrda, uda=replace(hrda.uda, mic=MICConfig(block_size=16))),
        # Table 4: detail crops of 0.25 and 0.375 of the context (HR0.25, HR0.375).
        "detail0.25": replace(
            hrda, model=replace(hrda.model, detail_crop_size=(context // 4, context // 4))
        ),
        "detail0.375": replace(
            hrda, model=replace(hrda.model, detail_crop_size=(context * 3 // 8, context * 3 // 8))
        ),
    }
    rows |= _synthetic_table2(hrda)
    # Domain generalization: the HRDA row with a 0.375 detail crop, and DAFormer on LR data;
    # prototypes refreshed every tenth of the schedule (4000 of 40k iterations in the paper).
    shade_cfg = SHADEConfig(refresh_interval=max(iters // 10, 1))
    dg_hrda = replace(
        hrda, model=replace(hrda.model, detail_crop_size=(context * 3 // 8, context * 3 // 8))
    )
    for key, cfg in (("dg_hrda", dg_hrda), ("dg_daformer", rows["daformer_lr"])):
        cfg = _domain_generalization(cfg, key)
        rows[key] = replace(cfg, uda=replace(cfg.uda, shade=shade_cfg))
    for suffix, change in ABLATIONS.items():
        model = replace(hrda.model, **change)
        if suffix == "samescale":  # detail = context resolution: LR loss on, as experiments.py
            model = replace(model, lr_loss_weight=model.detail_loss_weight)
        rows[suffix] = replace(hrda, model=model)
    return {key: replace(cfg, name=f"synthetic_{key}") for key, cfg in rows.items()}


def smoke_rows() -> dict[str, ExperimentConfig]:
    """The synthetic rows for 4 iterations on the tiny variant: seconds each (tests). Rows whose
    encoder input would fall under MiT's 32 px minimum at tiny's 64 px context are left out."""
    rows = synthetic_rows("tiny", iters=4)
    out = {}
    for key, cfg in rows.items():
        context = cfg.test_window[0]
        smallest = min(cfg.model.detail_crop_size[0], round(context * cfg.model.context_scale))
        if cfg.model.multi_resolution and smallest < 32 and key != "dg_hrda":  # MiT: >= 32 px
            continue
        cfg = replace(
            cfg,
            name=f"smoke_{key}",
            eval_interval=4,
            checkpoint_interval=2,
            data=replace(cfg.data, rcs=None if key == "daformer_lr" else cfg.data.rcs),
        )
        if key == "mic_hrda":
            cfg = replace(cfg, uda=replace(cfg.uda, mic=MICConfig(block_size=8)))
        if key == "dg_hrda":  # tiny's 64 px context: a 32 px detail crop (MiT's minimum)
            cfg = replace(cfg, model=replace(cfg.model, detail_crop_size=(32, 32)))
        out[key] = cfg
    # One smoke row exercises the feature distance, which the synthetic presets leave off.
    out["hrda"] = replace(out["hrda"], uda=replace(out["hrda"].uda, fd_weight=0.005))
    return out


PAPER_PRESETS: dict[str, Callable[[], ExperimentConfig]] = {
    f.__name__: f
    for f in (
        gta_to_cityscapes_hrda,
        synthia_to_cityscapes_hrda,
        cityscapes_to_acdc_hrda,
        cityscapes_to_darkzurich_hrda,
        gta_to_cityscapes_mic_hrda,
        cityscapes_to_acdc_mic_hrda,
        gta_to_cityscapes_daformer,
        gta_to_cityscapes_source_only,
        gta_dg_hrda,
        gta_dg_daformer,
    )
}
PAPER_PRESETS |= {
    table2_preset(method, hrda).name: partial(table2_preset, method, hrda)
    for method in TABLE2_METHODS
    for hrda in (False, True)
}


# Paper rows with a size: name prefix -> (function of the size, the sizes the paper reports).
SIZED_PRESETS: dict[str, tuple[Callable[[int], ExperimentConfig], tuple[int, ...]]] = {
    "gta_to_cityscapes_daformer_hr_crop": (gta_to_cityscapes_daformer_hr_crop, (256, 512, 768)),
    "gta_to_cityscapes_daformer_lr_crop": (gta_to_cityscapes_daformer_lr_crop, (128, 256, 384)),
    "cityscapes_oracle_crop": (cityscapes_oracle, (256, 512, 768, 1024)),
    "gta_to_cityscapes_hrda_context": (gta_to_cityscapes_hrda_context, (512, 768)),
}


def _paper_ablation(suffix: str) -> ExperimentConfig:
    base = gta_to_cityscapes_hrda()
    return replace(
        base,
        name=f"gta_to_cityscapes_hrda_{suffix}",
        model=replace(base.model, **ABLATIONS[suffix]),
    )


def list_presets() -> list[str]:
    """Every preset name, one per experiment row."""
    names = list(PAPER_PRESETS) + [f"gta_to_cityscapes_hrda_{s}" for s in ABLATIONS]
    names += [f"{prefix}{size}" for prefix, (_, sizes) in SIZED_PRESETS.items() for size in sizes]
    names += [cfg.name for cfg in synthetic_rows().values()]
    names += [cfg.name for cfg in smoke_rows().values()]
    return names


def get_preset(name: str) -> ExperimentConfig:
    """The ExperimentConfig of a preset name (see `list_presets`)."""
    if name in PAPER_PRESETS:
        return PAPER_PRESETS[name]()
    for prefix, (function, _) in SIZED_PRESETS.items():
        if name.startswith(prefix) and name[len(prefix) :].isdigit():
            return function(int(name[len(prefix) :]))
    if name.startswith("gta_to_cityscapes_hrda_") and name.rsplit("_", 1)[1] in ABLATIONS:
        return _paper_ablation(name.rsplit("_", 1)[1])
    if name.startswith("synthetic_"):
        rows = synthetic_rows()
        if name[len("synthetic_") :] in rows:
            return rows[name[len("synthetic_") :]]
    if name.startswith("smoke_"):
        rows = smoke_rows()
        if name[len("smoke_") :] in rows:
            return rows[name[len("smoke_") :]]
    raise KeyError(f"unknown preset {name!r}; `python -m hrda_lib.train --list` shows them all")
