"""HRDA's multi-resolution segmentor: context and detail crops fused by a learned scale attention.

Implements HRDA (Hoyer, Dai, Van Gool, ECCV 2022), sections 3.2-3.4: one encoder and one
segmentation head, shared by a low-resolution context crop and a high-resolution detail crop, and a
scale-attention head on the context features only (reference spec 2.2-2.5). The fusion is on
logits, `fused = up(a·m) · detail_in_frame + up((1 - a·m) · lr)`, with the attention `a` zeroed
outside the detail box (`m`) in training and unmasked at inference, where the detail branch is an
overlapping sliding window over the whole context. A single-scale `Segmentor` (DAFormer,
DeepLabV2) shares the interface for the baselines.

Spatial frames: an input `(B, 3, H, W)` is the context in full-resolution pixels. Logits of the
detail branch and the fused output are at `H / os` (os = 4 for DAFormer, 8 for DeepLabV2); the
context logits and the attention at `H · context_scale / os`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from hrda_lib.config import ModelConfig
from hrda_lib.crops import (
    Box,
    average_windows,
    box_mask,
    crop,
    paste,
    sample_detail_box,
    scale_box,
    sliding_windows,
)
from hrda_lib.encoders import build_encoder
from hrda_lib.heads import build_head
from hrda_lib.losses import cross_entropy

StyleHook = Callable[[torch.Tensor], torch.Tensor]  # stage-1 features -> what later stages see


@dataclass
class MultiResOutput:
    """What one forward of a segmentor produces; fields of the other branch are None if absent.

    context_logits: (B, K, h, w) context logits before attention weighting (h = H·s_c/os).
    attention: (B, K|1, h, w) sigmoid scale attention before box masking, or a fixed float.
    context_weighted: (B, K, h, w) `(1 - a·m) · context_logits` (the official `lr_seg`, the
        input of the context loss).
    detail_logits: detail logits, (B, K, h_d, w_d) for a detail crop or (B, K, H/os, W/os) for the
        sliding-window canvas at inference.
    fused: (B, K, H/os, W/os) the prediction that the main loss and inference use.
    detail_box: the detail crop (y1, y2, x1, x2) in full-resolution pixels, None at inference.
    context_features / detail_features: encoder outputs of the context and the detail crop.
    """

    fused: torch.Tensor
    context_logits: torch.Tensor | None = None
    attention: torch.Tensor | float | None = None
    context_weighted: torch.Tensor | None = None
    detail_logits: torch.Tensor | None = None
    detail_box: Box | None = None
    context_features: list[torch.Tensor] | None = None
    detail_features: list[torch.Tensor] | None = None


def resize(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Bilinear rescale by `scale` (align_corners=False, no antialias), identity for 1.

    Passes `scale_factor` to F.interpolate, as the official code does: for non-integer ratios
    (context scale 0.75) the sampling grid differs from resizing to a target size.
    """
    if scale == 1:
        return x
    return F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False)


def blur_down_up(image: torch.Tensor) -> torch.Tensor:
    """The `blurhr` ablation input: downscale x0.5 and back, i.e. context detail at HR size."""
    return resize(resize(image, 0.5), 2.0)


def fuse_logits(
    context_logits: torch.Tensor,
    attention: torch.Tensor | float,
    detail_in_frame: torch.Tensor,
    upscale: float,
    mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """HRDA's scale-attention fusion on logits.

    Args:
        context_logits: (B, K, h, w) context logits.
        attention: (B, K|1, h, w) in [0, 1], or a constant.
        detail_in_frame: (B, K, h·upscale, w·upscale) detail logits in the context's output frame
            (zero outside the detail box in training).
        upscale: ratio of the fused frame to the context logit frame (1 / context_scale).
        mask: (1, 1, h, w) detail-box mask; attention is zeroed outside it (training only).

    Returns:
        fused (B, K, h·upscale, w·upscale) and the weighted context logits `(1 - a·m)·lr`.
    """
    if mask is not None:
        attention = attention * mask
    context_weighted = (
        1 - attention
    ) * context_logits  # before upsampling: 1-px soft box edge, as official
    if torch.is_tensor(attention):
        attention = resize(attention, upscale)
    return attention * detail_in_frame + resize(context_weighted, upscale), context_weighted


class HRDASegmentor(nn.Module):
    """HRDA: shared encoder and head over context and detail crops, plus a scale-attention head.

    Args:
        encoder: returns the stage feature maps of an image (`hrda_lib.encoders`).
        decode_head: segmentation head over those maps; its `output_stage` names the stage whose
            resolution its logits have.
        scale_attention_head: the attention head (K or 1 output channels), None for a fixed
            attention.
        cfg: the sizes and switches (context scale, detail crop, attention, loss weights).
    """

    def __init__(
        self,
        encoder: nn.Module,
        decode_head: nn.Module,
        scale_attention_head: nn.Module | None,
        cfg: ModelConfig,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.decode_head = decode_head
        if scale_attention_head is not None:
            self.scale_attention_head = scale_attention_head
        self.output_stride = encoder.reductions[decode_head.output_stage]

    def head_parameters(self) -> list[nn.Parameter]:
        """The decoder heads' parameters (lr x 10 in the recipe), segmentation head first."""
        heads = [self.decode_head, getattr(self, "scale_attention_head", None)]
        return [p for head in heads if head is not None for p in head.parameters()]

    # -- building blocks -------------------------------------------------------------------
    def scale_attention(self, context_features: list[torch.Tensor]) -> torch.Tensor | float:
        """Sigmoid attention (B, K|1, h, w) from context features, or the fixed value."""
        if not hasattr(self, "scale_attention_head"):
            return self.cfg.fixed_attention
        return torch.sigmoid(self.scale_attention_head(context_features))

    def _detail_source(self, image: torch.Tensor) -> torch.Tensor:
        return blur_down_up(image) if self.cfg.blur_detail else image

    def _encode_both(
        self, context_input: torch.Tensor, detail_input: torch.Tensor, style: StyleHook | None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Encoder features of the LR context and the detail input(s). When they have the same
        size (HRDA's default: a 1024 context seen at 0.5 and 512 detail crops) they go through
        the encoder as one batch, which computes the same per-image values (MiT normalizes per
        token) faster; the heads still see each branch on its own (their BatchNorms)."""
        if style is None and context_input.shape[1:] == detail_input.shape[1:]:
            features = self.encoder(torch.cat([context_input, detail_input]))
            n = context_input.shape[0]
            return [f[:n] for f in features], [f[n:] for f in features]
        return self.encoder(context_input, style), self.encoder(detail_input, style)

    # -- training ----------------------------------------------------------------------------
    def forward_multires(
        self, image: torch.Tensor, detail_box: Box, style: StyleHook | None = None
    ) -> MultiResOutput:
        """Training-style forward on a context crop with the given detail box.

        Args:
            image: (B, 3, H, W) normalized context crop.
            detail_box: (y1, y2, x1, x2) in full-resolution pixels of `image`.
            style: applied to the encoder's stage-1 features of both branches (SHADE doubles
                the batch there: every output then has 2B samples).
        """
        context_features, detail_features = self._encode_both(
            resize(image, self.cfg.context_scale),
            crop(self._detail_source(image), detail_box),
            style,
        )
        context_logits = self.decode_head(context_features)
        attention = self.scale_attention(context_features)
        detail_logits = self.decode_head(detail_features)
        os, cs = self.output_stride, self.cfg.context_scale
        mask = box_mask(context_logits.shape[2:], scale_box(detail_box, os / cs), image.device)
        frame = (image.shape[2] // os, image.shape[3] // os)
        detail_in_frame = paste(frame, detail_logits, scale_box(detail_box, os))
        fused, context_weighted = fuse_logits(
            context_logits, attention, detail_in_frame, 1 / cs, mask
        )
        return MultiResOutput(
            fused,
            context_logits,
            attention,
            context_weighted,
            detail_logits,
            detail_box,
            context_features,
            detail_features,
        )

    def forward_train(
        self,
        image: torch.Tensor,
        generator: torch.Generator | None = None,
        style: StyleHook | None = None,
    ) -> MultiResOutput:
        """Draw a fresh detail box (offsets multiples of 8) and run `forward_multires`."""
        height, width = image.shape[2:]
        box = sample_detail_box(
            height, width, self.cfg.detail_crop_size, self.cfg.crop_coord_divisible, generator
        )
        return self.forward_multires(image, box, style)

    # -- inference ---------------------------------------------------------------------------
    def _detail_windows(self, image: torch.Tensor) -> tuple[list[Box], torch.Tensor]:
        """The overlapping detail windows of an image and their crops (n_windows * B, 3, h, w)."""
        window = self.cfg.detail_crop_size
        stride = tuple(s // 2 for s in window) if self.cfg.detail_slide_overlapping else window
        boxes = sliding_windows(image.shape[2], image.shape[3], window, stride)
        source = self._detail_source(image)
        return boxes, torch.cat([crop(source, box) for box in boxes])

    def _average_detail(
        self, logits: torch.Tensor, boxes: list[Box], batch: int, image_hw: tuple[int, int]
    ) -> torch.Tensor:
        os = self.output_stride
        patches = logits.split(batch)  # one (B, K, h, w) per window
        frame = (image_hw[0] // os, image_hw[1] // os)
        return average_windows(frame, [scale_box(box, os) for box in boxes], patches)

    def detail_slide(self, image: torch.Tensor, max_batch: int | None = None) -> torch.Tensor:
        """Detail logits over the whole image from overlapping detail windows, averaged.

        All windows (x batch) go through encoder and head in one batch unless `max_batch` bounds
        it (exact in eval mode; keep None where BatchNorm uses batch statistics).

        Args:
            image: (B, 3, H, W) at full resolution.
        Returns:
            (B, K, H/os, W/os) average of the window logits where they overlap.
        """
        boxes, crops = self._detail_windows(image)
        logits = _run_batched(lambda x: self.decode_head(self.encoder(x)), crops, max_batch)
        return self._average_detail(logits, boxes, image.shape[0], image.shape[2:])

    def forward_slide(
        self,
        image: torch.Tensor,
        attention_override: float | None = None,
        max_batch: int | None = None,
    ) -> MultiResOutput:
        """Inference forward of one context window: whole-image context + sliding detail.

        Without `max_batch`, the context and every detail window go through the encoder as one
        batch (the heads see each branch on its own).

        Args:
            image: (B, 3, H, W) normalized context window.
            attention_override: analysis modes: 0 = context only, 1 = detail only, else fixed.
            max_batch: bound on images per encoder call in the detail slide.
        """
        context_input = resize(image, self.cfg.context_scale)
        if max_batch is None:
            boxes, crops = self._detail_windows(image)
            context_features, detail_features = self._encode_both(context_input, crops, None)
            context_logits = self.decode_head(context_features)
            attention = self.scale_attention(context_features)
            detail_logits = self._average_detail(
                self.decode_head(detail_features), boxes, image.shape[0], image.shape[2:]
            )
        else:
            context_features = self.encoder(context_input)
            context_logits = self.decode_head(context_features)
            attention = self.scale_attention(context_features)
            detail_logits = self.detail_slide(image, max_batch)
        if attention_override is not None:
            attention = attention_override
        fused, context_weighted = fuse_logits(
            context_logits, attention, detail_logits, 1 / self.cfg.context_scale
        )
        return MultiResOutput(
            fused,
            context_logits,
            attention,
            context_weighted,
            detail_logits,
            None,
            context_features,
            None,
        )

    def encode_decode(
        self,
        image: torch.Tensor,
        attention_override: float | None = None,
        max_batch: int | None = None,
    ) -> torch.Tensor:
        """Full-resolution logits (B, K, H, W) of one context window (also the pseudo-labeller)."""
        fused = self.forward_slide(image, attention_override, max_batch).fused
        return F.interpolate(fused, size=image.shape[2:], mode="bilinear", align_corners=False)


class Segmentor(nn.Module):
    """A single-scale segmentor (DAFormer or DeepLabV2): the baselines of the paper's tables.

    Args:
        encoder, decode_head: as for `HRDASegmentor`.
        cfg: the architecture it was built from (kept for checkpoints and analysis).
    """

    def __init__(self, encoder: nn.Module, decode_head: nn.Module, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = encoder
        self.decode_head = decode_head
        self.output_stride = encoder.reductions[decode_head.output_stage]

    def head_parameters(self) -> list[nn.Parameter]:
        """The decoder head's parameters (lr x 10 in the recipe)."""
        return list(self.decode_head.parameters())

    def forward_train(
        self,
        image: torch.Tensor,
        generator: torch.Generator | None = None,
        style: StyleHook | None = None,
    ) -> MultiResOutput:
        """Logits (B, K, H/os, W/os) of the whole crop; `generator` is unused (no detail box);
        `style` maps the encoder's stage-1 features (SHADE)."""
        features = self.encoder(image, style)
        return MultiResOutput(self.decode_head(features), context_features=features)

    def encode_decode(self, image: torch.Tensor, max_batch: int | None = None) -> torch.Tensor:
        """Full-resolution logits (B, K, H, W)."""
        logits = _run_batched(lambda x: self.decode_head(self.encoder(x)), image, max_batch)
        return F.interpolate(logits, size=image.shape[2:], mode="bilinear", align_corners=False)


def build_segmentor(cfg: ModelConfig) -> HRDASegmentor | Segmentor:
    """Build the encoder, the decode head and (HRDA) the scale-attention head that `cfg` names,
    and compose them: HRDA if `cfg.multi_resolution`, else the single-scale baseline. The only
    place that turns the config's names into modules (channel widths come from the encoder)."""
    encoder = build_encoder(cfg.encoder, cfg.drop_path_rate)
    channels = encoder.channels
    decode_head = build_head(cfg.head, channels, cfg.num_classes, channels=cfg.decoder_channels)
    if not cfg.multi_resolution:
        return Segmentor(encoder, decode_head, cfg)
    attention_head = None
    if cfg.attention != "fixed":
        outputs = cfg.num_classes if cfg.attention == "classwise" else 1
        attention_head = build_head(
            cfg.head, channels, outputs, attention=True, channels=cfg.decoder_channels
        )
    return HRDASegmentor(encoder, decode_head, attention_head, cfg)


def _run_batched(fn, x: torch.Tensor, max_batch: int | None) -> torch.Tensor:
    """Apply `fn` to `x` in chunks of at most `max_batch` along dim 0 (all at once if None)."""
    if max_batch is None or x.shape[0] <= max_batch:
        return fn(x)
    return torch.cat([fn(chunk) for chunk in x.split(max_batch)])


def segmentation_loss(
    out: MultiResOutput,
    label: torch.Tensor,
    cfg: ModelConfig,
    weight: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """HRDA's training loss: `(1 - λd - λlr)·CE(fused) + λd·CE(detail) + λlr·CE(context_weighted)`.

    Logits are upsampled bilinearly to the label size; the detail loss compares the detail logits
    with the label and weight cropped to the detail box. Cross-entropy averages over all pixels,
    ignored ones included (mmseg 0.16 semantics).

    Args:
        out: a training forward's output.
        label: (B, H, W) int64 train ids, 255 = ignore, at the context's full resolution.
        weight: optional (B, H, W) per-pixel weight (pseudo-label quality times margins).

    Returns:
        {"fused", "detail", "context", "total"}: the weighted terms and their sum; a term that is
        off is absent.
    """

    def ce(logits: torch.Tensor, target: torch.Tensor, w: torch.Tensor | None) -> torch.Tensor:
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        return cross_entropy(logits, target, w)

    if out.detail_box is None:  # single-scale segmentor
        loss = ce(out.fused, label, weight)
        return {"fused": loss, "total": loss}
    terms = {"fused": cfg.fused_loss_weight * ce(out.fused, label, weight)}
    if cfg.context_loss_weight > 0:
        terms["context"] = cfg.context_loss_weight * ce(out.context_weighted, label, weight)
    if cfg.detail_loss_weight > 0:
        box = out.detail_box
        crop_weight = None if weight is None else crop(weight, box)
        terms["detail"] = cfg.detail_loss_weight * ce(
            out.detail_logits, crop(label, box), crop_weight
        )
    terms["total"] = sum(terms.values())
    return terms
