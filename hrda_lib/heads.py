"""Decode heads of HRDA: the DAFormer decoder, its scale-attention variant, and DeepLabV2's.

DAFormer (Hoyer et al., CVPR 2022) decodes the four MiT stages by per-stage linear embeddings,
upsampling to stride 4, concatenation in stage order, a depthwise-separable ASPP (dilations 1, 6,
12, 18, no pooling) and a 3x3 bottleneck (reference spec 1.3). HRDA's scale-attention head is the
same decoder with a single 1x1 conv as fusion (spec 2.2). The reduced DeepLabV2 head sums two
dilated 3x3 classifiers (spec 1.4). Submodule names follow the official checkpoints
(`embed_layers.{i}.proj`, `fuse_layer.aspp_modules...`, `conv_seg`), so loading one is a prefix
rename. Initialization follows mmcv: conv+BN blocks Kaiming-normal (fan_out) with BN 1/0,
classifiers Normal(0, 0.01) with zero bias, embeddings PyTorch's default.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from hrda_lib import depthwise
from hrda_lib.errors import UnknownNameError


class ConvBNReLU(nn.Module):
    """Conv (no bias) + BatchNorm + ReLU, mmcv's `ConvModule` with BN and ReLU."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        padding: int = 0,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels,
            out_channels,
            kernel_size,
            padding=padding,
            dilation=dilation,
            groups=groups,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(out_channels)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.ones_(self.bn.weight)
        nn.init.zeros_(self.bn.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if depthwise.applies(self.conv, x):  # the ASPP's depthwise convolutions on a CPU
            y = depthwise.depthwise_conv3x3(x, self.conv.weight, self.conv.dilation[0])
        else:
            y = self.conv(x)
        return F.relu(self.bn(y), inplace=True)  # BatchNorm's backward does not need its output


class DepthwiseSeparableConv(nn.Module):
    """Depthwise 3x3 ConvBNReLU followed by a pointwise 1x1 ConvBNReLU."""

    def __init__(self, in_channels: int, out_channels: int, dilation: int) -> None:
        super().__init__()
        self.depthwise_conv = ConvBNReLU(
            in_channels, in_channels, 3, padding=dilation, dilation=dilation, groups=in_channels
        )
        self.pointwise_conv = ConvBNReLU(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise_conv(self.depthwise_conv(x))


class SeparableASPP(nn.Module):
    """Depthwise-separable ASPP without image pooling, then a 3x3 bottleneck (DAFormer fusion)."""

    def __init__(self, in_channels: int, channels: int, dilations: Sequence[int]) -> None:
        super().__init__()
        self.aspp_modules = nn.ModuleList(
            ConvBNReLU(in_channels, channels, 1)
            if d == 1
            else DepthwiseSeparableConv(in_channels, channels, d)
            for d in dilations
        )
        self.bottleneck = ConvBNReLU(len(dilations) * channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bottleneck(torch.cat([branch(x) for branch in self.aspp_modules], dim=1))


class LinearEmbedding(nn.Module):
    """Per-pixel linear projection of a feature map: (B, C, h, w) -> (B, E, h, w)."""

    def __init__(self, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Linear(in_channels, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, _, height, width = x.shape
        tokens = self.proj(x.flatten(2).transpose(1, 2))  # (B, h*w, E)
        return tokens.transpose(1, 2).reshape(batch, -1, height, width)


class DAFormerHead(nn.Module):
    """DAFormer's context-aware decoder; with `fusion="conv1x1"` HRDA's scale-attention head.

    Args:
        in_channels: channels of the four encoder stages (from the encoder, never typed in).
        num_classes: output channels (19 classes; 1 for single-channel attention).
        embed_dim: width of the embeddings and the fusion output (256).
        fusion: `"sep_aspp"` (segmentation head) or `"conv1x1"` (attention head).
        dilations: ASPP dilations of the `sep_aspp` fusion.
        dropout: Dropout2d probability before the classifier.
    """

    output_stage = 0  # logits at the resolution of the first (stride-4) stage

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int = 19,
        embed_dim: int = 256,
        fusion: str = "sep_aspp",
        dilations: Sequence[int] = (1, 6, 12, 18),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embed_layers = nn.ModuleDict(
            {str(i): LinearEmbedding(c, embed_dim) for i, c in enumerate(in_channels)}
        )
        fused_channels = embed_dim * len(in_channels)
        if fusion == "sep_aspp":
            self.fuse_layer: nn.Module = SeparableASPP(fused_channels, embed_dim, dilations)
        elif fusion == "conv1x1":
            self.fuse_layer = ConvBNReLU(fused_channels, embed_dim, 1)
        else:
            raise UnknownNameError(f"unknown fusion {fusion!r}; expected 'sep_aspp' or 'conv1x1'")
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = nn.Conv2d(embed_dim, num_classes, 1)
        nn.init.normal_(self.conv_seg.weight, std=0.01)
        nn.init.zeros_(self.conv_seg.bias)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """features: 4 maps at strides 4..32 -> logits (B, K, h, w) at the stride-4 size."""
        size = features[0].shape[2:]
        embedded = []
        for i, feature in enumerate(features):
            x = self.embed_layers[str(i)](feature)
            if x.shape[2:] != size:
                x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
            embedded.append(x)
        x = self.fuse_layer(torch.cat(embedded, dim=1))  # stage order 1..4, (B, 4E, h, w)
        return self.conv_seg(self.dropout(x))


class DLV2Head(nn.Module):
    """Reduced DeepLabV2 classifier: dilated 3x3 convs on the last feature map, summed.

    Args:
        in_channels: channels of the encoder stages; only the last is used (2048 for ResNet).
        num_classes: output channels.
        dilations: one 3x3 conv per dilation ((6, 12) in HRDA's `dlv2red`).
    """

    output_stage = -1  # logits at the resolution of the last stage it reads

    def __init__(
        self, in_channels: Sequence[int], num_classes: int = 19, dilations: Sequence[int] = (6, 12)
    ) -> None:
        super().__init__()
        self.aspp_modules = nn.ModuleList(
            nn.Conv2d(in_channels[-1], num_classes, 3, padding=d, dilation=d) for d in dilations
        )
        for conv in self.aspp_modules:
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        """features: encoder maps, the last (B, C, h, w) -> logits (B, K, h, w)."""
        x = features[-1]
        out = self.aspp_modules[0](x)
        for branch in self.aspp_modules[1:]:
            out = out + branch(x)
        return out


def build_head(
    kind: str,
    in_channels: Sequence[int],
    num_classes: int,
    attention: bool = False,
    channels: int = 256,
) -> nn.Module:
    """The segmentation head (`attention=False`) or the scale-attention head of a decoder kind.

    Args:
        kind: `"daformer_sepaspp"` or `"dlv2"`.
        in_channels: encoder stage channels.
        num_classes: output channels (K for the seg head; K or 1 for attention).
        attention: build the scale-attention variant (1x1-conv fusion for DAFormer).
        channels: DAFormer's embedding and fusion width (256).
    """
    if kind == "daformer_sepaspp":
        fusion = "conv1x1" if attention else "sep_aspp"
        return DAFormerHead(in_channels, num_classes, embed_dim=channels, fusion=fusion)
    if kind == "dlv2":
        return DLV2Head(in_channels, num_classes)
    raise UnknownNameError(f"unknown head {kind!r}; expected 'daformer_sepaspp' or 'dlv2'")
