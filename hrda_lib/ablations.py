"""What each row of the paper's tables changes, as small named functions of an experiment.

HRDA's ablations, crop-size studies and baselines are all changes of the final HRDA: its data
at another resolution (`lr_data`), a smaller common training window (`sync_crop`), another
attention, detail crop or loss weight, another UDA method. Sizes are relative to the context crop
C of the experiment they change (1024 px in the paper), so the same function makes the row on
the paper's data and on the synthetic benchmark (`hrda_lib.presets`). `rehearsal` is the one
change that is no row: a paper row narrowed and shortened for a CPU rehearsal of the profile.
"""

from __future__ import annotations

from dataclasses import replace

from hrda_lib.config import ExperimentConfig, MICConfig, ModelConfig, with_iters
from hrda_lib.optim import sgd_config
from hrda_lib.shade import SHADEConfig
from hrda_lib.transforms import PipelineConfig


def context_size(cfg: ExperimentConfig) -> int:
    """C: the (square) context crop of an HRDA experiment, in full-resolution pixels."""
    return cfg.data.source_pipeline.crop_size[0]


def square_crops(cfg: ExperimentConfig, crop: int) -> ExperimentConfig:
    """Source and target crops of `crop` (pixels of the data) and a test window of that size."""
    data = replace(
        cfg.data,
        source_pipeline=replace(cfg.data.source_pipeline, crop_size=(crop, crop)),
        target_pipeline=replace(cfg.data.target_pipeline, crop_size=(crop, crop)),
    )
    return replace(cfg, data=data, test_window=(crop, crop), test_stride=(crop // 2, crop // 2))


def lr_data(cfg: ExperimentConfig, scale: float = 0.5, crop: float = 1.0) -> ExperimentConfig:
    """Single-scale DAFormer on data resized by `scale` (0.5: DAFormer's half-resolution GTA
    1280x720 / Cityscapes 1024x512) with crops of `crop` x C (C of `cfg`) full-resolution pixels.

    Rare class sampling accepts a crop by its pixel count, so `min_crop_ratio` scales with the
    pixel count (2.0 x 0.25 = 0.5, DAFormer's value on half-resolution data)."""
    size = round(context_size(cfg) * crop * scale)

    def scaled(p: PipelineConfig, crop_size) -> PipelineConfig:
        return replace(
            p, scale=(round(p.scale[0] * scale), round(p.scale[1] * scale)), crop_size=crop_size
        )

    data = replace(
        cfg.data,
        source_pipeline=scaled(cfg.data.source_pipeline, (size, size)),
        target_pipeline=scaled(cfg.data.target_pipeline, (size, size)),
        test_pipeline=scaled(cfg.data.test_pipeline, None),
    )
    if data.rcs is not None:
        data = replace(
            data, rcs=replace(data.rcs, min_crop_ratio=data.rcs.min_crop_ratio * scale**2)
        )
    model = replace(cfg.model, multi_resolution=False)
    return replace(
        cfg, data=data, model=model, test_window=(size, size), test_stride=(size // 2, size // 2)
    )


def sync_crop(cfg: ExperimentConfig, crop: float) -> ExperimentConfig:
    """Train on one common window of `crop` x C cut at the same offset from the source and the
    target crops (the official `sync_crop_size` of the small-crop rows: RCS, `cat_max_ratio`
    and margins are judged on the full crops; ClassMix pastes line up); test with that window.
    `crop` is relative to the context crop of `cfg` (in pixels of its data)."""
    size = round(context_size(cfg) * crop)
    data = replace(cfg.data, sync_crop_size=(size, size))
    return replace(cfg, data=data, test_window=(size, size), test_stride=(size // 2, size // 2))


def daformer_hr(cfg: ExperimentConfig, crop: float) -> ExperimentConfig:
    """Single-scale DAFormer on full-resolution data, trained on sync crops of `crop` x C."""
    return sync_crop(replace(cfg, model=replace(cfg.model, multi_resolution=False)), crop)


def daformer_lr(cfg: ExperimentConfig, crop: float) -> ExperimentConfig:
    """Single-scale DAFormer on half-resolution data with sync crops of `crop` x C full-res px
    (LR0.5 = a 0.25 x C window of the half-resolution crop)."""
    base = lr_data(cfg)
    return base if crop == 1.0 else sync_crop(base, crop)


def hrda_context(cfg: ExperimentConfig, context: float) -> ExperimentConfig:
    """Table 3: HRDA on a sync crop of `context` x C. With the detail crop as large as the
    context the official code also supervises the context branch (lambda_lr = lambda_d) and
    computes FD on both scales; so does this row."""
    out = sync_crop(cfg, context)
    if out.data.sync_crop_size == cfg.model.detail_crop_size:
        out = replace(
            out,
            model=replace(out.model, context_loss_weight=cfg.model.detail_loss_weight),
            uda=replace(out.uda, fd_on_detail=True),
        )
    return out


def detail_crop(cfg: ExperimentConfig, detail: float) -> ExperimentConfig:
    """Table 4: a detail crop of `detail` x C."""
    size = round(context_size(cfg) * detail)
    return replace(cfg, model=replace(cfg.model, detail_crop_size=(size, size)))


def fixed_attention(cfg: ExperimentConfig) -> ExperimentConfig:
    """Averaging instead of learned attention (a = 0.5)."""
    return replace(cfg, model=replace(cfg.model, attention="fixed"))


def single_attention(cfg: ExperimentConfig) -> ExperimentConfig:
    """One attention channel for all classes."""
    return replace(cfg, model=replace(cfg.model, attention="single"))


def no_detail_overlap(cfg: ExperimentConfig) -> ExperimentConfig:
    """Detail windows at inference without overlap (stride = crop)."""
    return replace(cfg, model=replace(cfg.model, detail_slide_overlapping=False))


def detail_loss(cfg: ExperimentConfig, weight: float) -> ExperimentConfig:
    """lambda_d, the weight of the detail crop's own loss."""
    return replace(cfg, model=replace(cfg.model, detail_loss_weight=weight))


def context_scale(cfg: ExperimentConfig, scale: float) -> ExperimentConfig:
    """1/s_c, the resolution at which the context is seen."""
    return replace(cfg, model=replace(cfg.model, context_scale=scale))


def blurred_detail(cfg: ExperimentConfig) -> ExperimentConfig:
    """Table 6: the detail crop cut from the context's resolution, upsampled (no new detail)."""
    return replace(cfg, model=replace(cfg.model, blur_detail=True))


def same_scale(cfg: ExperimentConfig) -> ExperimentConfig:
    """Table 6 `samescale`: HRDA on half-resolution data with both branches at that
    resolution (LR1.0 + LR0.5: context scale 1, detail crop 0.25 x C of the LR image, the
    context branch supervised with lambda_lr = lambda_d as the official code does)."""
    base = lr_data(cfg)
    size = context_size(base) // 2
    model = replace(
        cfg.model,
        context_scale=1.0,
        detail_crop_size=(size, size),
        context_loss_weight=cfg.model.detail_loss_weight,
    )
    return replace(base, model=model)


def source_only(cfg: ExperimentConfig) -> ExperimentConfig:
    """Supervised on the source only: no target, no teacher."""
    return replace(cfg, uda=replace(cfg.uda, method="source_only"))


def from_scratch(cfg: ExperimentConfig) -> ExperimentConfig:
    """No ImageNet (or stand-in) weights: the encoder from random initialization, and no
    feature distance (its "ImageNet" model would be that initialization)."""
    return replace(cfg, pretrained="", uda=replace(cfg.uda, fd_weight=0.0))


def fractal_pretraining(cfg: ExperimentConfig) -> ExperimentConfig:
    """The encoder from formula-driven (FractalDB-style) pretraining instead of the stand-in or
    ImageNet: `pretrained/fractal_<encoder>.pth` (`python -m hrda_lib.pretrain --set fractal`
    makes it for MiT-b0); the feature distance keeps it as its "ImageNet" model."""
    return replace(cfg, pretrained=f"pretrained/fractal_{cfg.model.encoder}.pth")


def supervised_oracle(cfg: ExperimentConfig) -> ExperimentConfig:
    """Figure 4's oracle: supervised on the target's own training labels, no UDA, no RCS."""
    source = replace(cfg.data.target_pipeline, margins=None, cat_max_ratio=0.75)
    data = replace(cfg.data, source="cityscapes", source_pipeline=source, rcs=None)
    return replace(cfg, data=data, uda=replace(cfg.uda, method="source_only", fd_weight=0.0))


def mic(cfg: ExperimentConfig, block_size: int) -> ExperimentConfig:
    """MIC's masked image consistency with mask blocks of `block_size` full-resolution px."""
    return replace(cfg, uda=replace(cfg.uda, mic=MICConfig(block_size=block_size)))


def domain_generalization(cfg: ExperimentConfig) -> ExperimentConfig:
    """Source only with photometric augmentation and SHADE style hallucination (prototypes
    refreshed every tenth of the schedule, 4000 of 40k iterations in the paper); the target
    is only validated on."""
    data = replace(cfg.data, source_pipeline=replace(cfg.data.source_pipeline, photometric=True))
    shade = SHADEConfig(refresh_interval=max(cfg.iters // 10, 1))
    uda = replace(cfg.uda, method="source_only", shade=shade)
    return replace(cfg, data=data, uda=uda)


def deeplabv2(cfg: ExperimentConfig) -> ExperimentConfig:
    """Table 2's DeepLabV2 (ResNet-101 V1c from ImageNet, the reduced `dlv2` head) with its
    `whole` test mode: one outer window (HRDA still slides its detail crops inside it)."""
    model = ModelConfig(
        encoder="resnet101_v1c", head="dlv2", multi_resolution=cfg.model.multi_resolution
    )
    long, short = cfg.data.test_pipeline.scale
    return replace(
        cfg,
        model=model,
        pretrained="pretrained/resnet101_v1c.pth",
        test_window=(short, long),
        test_stride=(short, long),
    )


def dacs(cfg: ExperimentConfig) -> ExperimentConfig:
    """DACS: alpha 0.99 and neither FD, RCS nor pseudo-label margins."""
    data = replace(
        cfg.data, rcs=None, target_pipeline=replace(cfg.data.target_pipeline, margins=None)
    )
    return replace(cfg, data=data, uda=replace(cfg.uda, ema_alpha=0.99, fd_weight=0.0))


def output_alignment(cfg: ExperimentConfig, method: str, lr_scale: float = 1.0) -> ExperimentConfig:
    """AdvSeg / MinEnt: SGD (its lr and the discriminator's x `lr_scale`), photometric source
    augmentation (`gtaCAug`), no FD, RCS or margins."""
    data = replace(
        cfg.data,
        rcs=None,
        source_pipeline=replace(cfg.data.source_pipeline, photometric=True),
        target_pipeline=replace(cfg.data.target_pipeline, margins=None),
    )
    sgd = sgd_config()
    optimizer = replace(
        sgd,
        lr=sgd.lr * lr_scale,
        warmup_iters=cfg.optimizer.warmup_iters,
        max_iters=cfg.optimizer.max_iters,
    )
    adversarial = replace(cfg.uda.adversarial, lr=cfg.uda.adversarial.lr * lr_scale)
    uda = replace(cfg.uda, method=method, fd_weight=0.0, adversarial=adversarial)
    return replace(cfg, data=data, uda=uda, optimizer=optimizer)


REHEARSAL_ITERS = 2  # iterations of every row in the rehearsal profile


def rehearsal(cfg: ExperimentConfig, iters: int = REHEARSAL_ITERS) -> ExperimentConfig:
    """A paper row rehearsed on a CPU (`--profile rehearsal`, mock data at the real geometry).

    Every tensor keeps its spatial size: crops, sliding windows, test scales, data pipelines and
    the UDA recipe are the row's own. The networks are narrower: MiT-b0 with a 32-channel decoder
    in place of MiT-b5 with 256 channels (the 256-channel head alone is 113 GFLOPs per 512 px
    input at b0, 18 times the encoder), and for Table 2's DeepLabV2 a ResNet-18-D in place of
    ResNet-101 (357 GFLOPs per 512 px input at output stride 8), all from random initialization
    in place of ImageNet's weights (the feature distance keeps that initialization as its
    "ImageNet" model). `iters` iterations, validated and checkpointed once, at the end."""
    model = cfg.model
    if model.encoder.startswith("mit_"):
        model = replace(model, encoder="mit_b0", decoder_channels=32)
    else:
        model = replace(model, encoder="resnet18_v1d")
    cfg = with_iters(replace(cfg, model=model, pretrained=""), iters)
    return replace(
        cfg,
        eval_interval=iters,
        checkpoint_interval=iters,
        notes=f"rehearsal (small networks, random init, {iters} iterations) of: {cfg.notes}",
    )
