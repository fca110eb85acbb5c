"""Model configuration: HRDA's architecture and every ablation switch of the paper in one dataclass.

Defaults are the final HRDA of the paper (reference spec 2.1); the ablation rows of Tables 3-7,
Figure S1 and Table S1 are changes of single fields (spec 2.7). Sizes are in full-resolution
pixels of the context crop the data loader produces.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an HRDA (or single-scale DAFormer / DeepLabV2) segmentor."""

    encoder: str = "mit_b5"  # mit_b0..mit_b5, or resnet101_v1c for DeepLabV2
    head: str = "daformer_sepaspp"  # daformer_sepaspp | dlv2 (reduced DeepLabV2, dilations 6, 12)
    num_classes: int = 19  # K
    drop_path_rate: float = 0.1  # MiT stochastic depth (timm's default 0 would be wrong)
    decoder_channels: int = 256  # DAFormer embedding/fusion width (smaller only for CPU presets)
    multi_resolution: bool = True  # False: a plain single-scale segmentor (DAFormer baseline)
    context_scale: float = 0.5  # 1/s_c: resolution at which the context crop is seen (LR)
    detail_crop_size: tuple[int, int] = (512, 512)  # detail (HR) crop, full-resolution pixels
    crop_coord_divisible: int = 8  # detail-crop offsets are multiples of this
    attention: str = "classwise"  # classwise (K channels) | single (1 channel) | fixed
    fixed_attention: float = 0.5  # attention value when attention == "fixed" (averaging)
    detail_loss_weight: float = 0.1  # lambda_d, on the detail crop's own prediction
    lr_loss_weight: float = 0.0  # lambda_lr, on the attention-weighted context prediction
    blur_detail: bool = False  # "blurhr": detail input is up2(down2(image)), no new detail
    detail_slide_overlapping: bool = True  # inference detail windows at stride = crop / 2

    def __post_init__(self) -> None:
        if self.attention not in ("classwise", "single", "fixed"):
            raise ValueError(
                f"attention must be classwise, single or fixed, not {self.attention!r}"
            )
        if not 0 < self.context_scale <= 1:
            raise ValueError(f"context_scale must be in (0, 1], not {self.context_scale}")
        if self.detail_loss_weight + self.lr_loss_weight > 1:
            raise ValueError("detail_loss_weight + lr_loss_weight must not exceed 1")

    @property
    def fused_loss_weight(self) -> float:
        """1 - lambda_d - lambda_lr: the weight of the fused prediction's loss (0.9 in HRDA)."""
        return 1.0 - self.detail_loss_weight - self.lr_loss_weight
