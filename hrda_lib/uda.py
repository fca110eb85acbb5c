"""The self-training building blocks of HRDA's UDA recipe (DAFormer/DACS), as pure functions.

HRDA (Hoyer et al., ECCV 2022) adapts with the DAFormer recipe; this module implements its
pieces as the official code does them (reference spec 3.2-3.5, 3.7 and section 8):

* EMA teacher (3.2): alpha_t = min(1 - 1/(t+1), 0.999) over parameters only (buffers are
  neither copied nor averaged), the first iteration copies; the teacher runs with BatchNorm in
  train mode (batch statistics) and dropout / drop-path off.
* Pseudo-labels (3.3, 3.4): argmax of the teacher's softmax, with ONE quality weight per batch,
  the fraction of pixels whose confidence is >= tau = 0.968, times the margin mask.
* ClassMix (3.5, from DACS): half of the classes of the union of the whole source batch's labels
  (255 included) are pasted from source onto target.
* ImageNet feature distance on thing classes (3.7, DAFormer): L2 distance of the last encoder
  stage to a frozen ImageNet model, on cells whose majority label is a thing class.

Strong augmentation is in `augment.py` and MIC masking in `masking.py`.
Deviations: the random numbers come from explicit generators instead of the official global
numpy / python RNGs, so the same seed gives different (equally distributed) draws; an empty
feature-distance mask gives 0 instead of the official NaN (which had no gradient either).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from timm.layers import DropPath
from torch import nn

from hrda_lib.classes import IGNORE_INDEX, NUM_CLASSES, THING_CLASSES
from hrda_lib.distributed import Shard

# ----------------------------------------------------------------------------- EMA teacher


def ema_alpha(iteration: int, alpha_max: float = 0.999) -> float:
    """alpha_t = min(1 - 1/(t+1), alpha_max): 0.5, 0.667, ..., 0.99 at t=99, capped later."""
    return min(1 - 1 / (iteration + 1), alpha_max)


def create_ema_teacher(student: nn.Module) -> nn.Module:
    """A copy of `student` whose parameters do not require gradients."""
    teacher = copy.deepcopy(student)
    for param in teacher.parameters():
        param.requires_grad_(False)
    return teacher


@torch.no_grad()
def update_ema(
    teacher: nn.Module, student: nn.Module, iteration: int, alpha_max: float = 0.999
) -> None:
    """Update the teacher's parameters in place at the start of iteration `iteration`.

    t = 0 copies the student's parameters; t >= 1 sets teacher = a * teacher + (1 - a) * student
    with a = `ema_alpha(t, alpha_max)`, in the parameters' dtype. Buffers (BatchNorm running
    statistics) are left untouched, as in the official code.
    """
    teacher_params = list(teacher.parameters())
    student_params = list(student.parameters())
    if len(teacher_params) != len(student_params):
        raise ValueError("teacher and student have different numbers of parameters")
    alpha = ema_alpha(iteration, alpha_max)
    for ema_param, param in zip(teacher_params, student_params, strict=True):
        if ema_param.shape != param.shape:
            raise ValueError(f"parameter shapes differ: {ema_param.shape} vs {param.shape}")
        if iteration == 0:
            ema_param.copy_(param)
        else:  # the official expression, so float32 results agree bit for bit
            ema_param.copy_(alpha * ema_param + (1 - alpha) * param)


def set_teacher_mode(teacher: nn.Module) -> None:
    """Train mode (BatchNorm uses batch statistics) with every dropout and DropPath off."""
    teacher.train()
    for module in teacher.modules():
        # _DropoutNd is the base of every nn.Dropout* class: the official code tests it too.
        if isinstance(module, nn.modules.dropout._DropoutNd | DropPath):
            module.eval()


# ----------------------------------------------------------------------------- pseudo-labels


def pseudo_label_and_weight(
    logits: torch.Tensor,
    threshold: float | None = 0.968,
    valid_mask: torch.Tensor | None = None,
    ignore_top: int = 0,
    ignore_bottom: int = 0,
    shard: Shard | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher pseudo-labels and their weight (one quality scalar per batch x margin mask).

    Args:
        logits: (B, K, H, W) teacher logits on the un-augmented target images.
        threshold: tau; the quality q is the fraction of the B*H*W pixels whose max softmax
            probability is >= tau. None gives q = 1 (MIC's "w/o confidence weight" ablation).
        valid_mask: (B, H, W) margin mask, 1 where pseudo-labels count ("plcrop v2", the
            cropped `crops.pseudo_label_margin_mask`); multiplied into the weight.
        ignore_top, ignore_bottom: legacy "plcrop v1" of DAFormer: zero the weight of the top /
            bottom rows of the crop (15 / 120 for 512 crops); exclusive with `valid_mask`.
        shard: in a distributed run, q is the fraction of the global batch's pixels.

    Returns:
        pseudo_label: (B, H, W) int64 argmax class ids.
        pseudo_weight: (B, H, W) float32, q everywhere except in the masked margins (0).
    """
    if logits.ndim != 4:
        raise ValueError(f"logits must be (B, K, H, W), got {tuple(logits.shape)}")
    probs = torch.softmax(logits.detach(), dim=1)
    pseudo_prob, pseudo_label = probs.max(dim=1)  # (B, H, W) each
    if threshold is None:
        quality = torch.ones((), dtype=torch.float64, device=logits.device)
    elif shard is None or not shard.distributed:  # in float64 like the official python division
        quality = (pseudo_prob >= threshold).sum().double() / pseudo_prob.numel()
    else:
        pixels = torch.tensor(pseudo_prob.numel(), device=logits.device)
        quality = shard.total((pseudo_prob >= threshold).sum()).double() / shard.total(pixels)
    pseudo_weight = quality.float() * torch.ones_like(pseudo_prob, dtype=torch.float32)
    if (ignore_top > 0 or ignore_bottom > 0) and valid_mask is not None:
        raise ValueError("ignore_top/ignore_bottom (plcrop v1) and valid_mask are exclusive")
    if ignore_top > 0:
        pseudo_weight[:, :ignore_top, :] = 0
    if ignore_bottom > 0:
        pseudo_weight[:, -ignore_bottom:, :] = 0
    if valid_mask is not None:
        if valid_mask.shape != pseudo_weight.shape:
            raise ValueError(
                f"valid_mask {tuple(valid_mask.shape)} must be (B, H, W) "
                f"{tuple(pseudo_weight.shape)}"
            )
        pseudo_weight = pseudo_weight * valid_mask
    return pseudo_label, pseudo_weight


# ----------------------------------------------------------------------------- ClassMix


def classmix_masks(source_labels: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """ClassMix masks: per sample, ceil(n/2) of the n classes of the whole source batch.

    The n classes are the union of the labels of ALL source samples (255 included when
    present); each sample draws its own subset without replacement, and its mask is 1 where its
    own label is one of the drawn classes.

    Args:
        source_labels: (B, H, W) integer source labels.
        rng: numpy generator for the class draws.

    Returns:
        (B, 1, H, W) float32 masks, 1 = take the source pixel.
    """
    if source_labels.ndim != 3:
        raise ValueError(f"source_labels must be (B, H, W), got {tuple(source_labels.shape)}")
    classes = torch.unique(source_labels)  # sorted union over the batch
    n_classes = classes.numel()
    masks = []
    for label in source_labels:
        choice = rng.choice(n_classes, (n_classes + n_classes % 2) // 2, replace=False)
        chosen = classes[torch.as_tensor(choice, dtype=torch.long, device=classes.device)]
        masks.append(torch.isin(label, chosen))
    return torch.stack(masks)[:, None].float()  # (B, 1, H, W)


def mix(mask: torch.Tensor, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """mask * source + (1 - mask) * target for a binary mask, keeping the inputs' dtype.

    Args:
        mask: (B, 1, H, W) binary mask (1 = source).
        source, target: (B, C, H, W) images or (B, H, W) labels / weights, same shape.

    Returns:
        The mixed tensor, shaped like `source`.
    """
    if source.shape != target.shape:
        raise ValueError(f"source {tuple(source.shape)} and target {tuple(target.shape)} differ")
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"mask must be (B, 1, H, W), got {tuple(mask.shape)}")
    select = mask.bool() if source.ndim == 4 else mask[:, 0].bool()  # (B,1,H,W) or (B,H,W)
    return torch.where(select, source, target)


# ----------------------------------------------------------------------------- feature distance


def downscale_label_by_majority(
    label: torch.Tensor,
    scale_factor: int,
    min_ratio: float = 0.75,
    num_classes: int = NUM_CLASSES,
    ignore_index: int = IGNORE_INDEX,
) -> torch.Tensor:
    """Label of each `scale_factor` x `scale_factor` cell: its majority class if pure enough.

    The ignore label competes as an extra class: a cell is `ignore_index` if the ignore class
    wins the argmax or if the winning class covers less than `min_ratio` of the cell.

    Args:
        label: (B, H, W) integer labels with values in [0, K) or `ignore_index`.
        scale_factor: cell size in pixels (> 1).

    Returns:
        (B, H // scale_factor, W // scale_factor) int64 labels.
    """
    if label.ndim != 3:
        raise ValueError(f"label must be (B, H, W), got {tuple(label.shape)}")
    if scale_factor <= 1:
        raise ValueError(f"scale_factor must be > 1, got {scale_factor}")
    label = label.long()
    label = torch.where(label == ignore_index, num_classes, label)  # ignore -> channel K
    one_hot = F.one_hot(label, num_classes + 1).permute(0, 3, 1, 2).float()  # (B, K+1, H, W)
    ratios = F.avg_pool2d(one_hot, kernel_size=scale_factor)  # (B, K+1, h, w)
    max_ratio, cell_label = ratios.max(dim=1)  # (B, h, w)
    cell_label[cell_label == num_classes] = ignore_index
    cell_label[max_ratio < min_ratio] = ignore_index
    return cell_label


def feature_distance_loss(
    f_student: torch.Tensor,
    f_imnet: torch.Tensor,
    label: torch.Tensor,
    thing_classes: Sequence[int] = THING_CLASSES,
    min_ratio: float = 0.75,
    weight: float = 0.005,
    num_classes: int = NUM_CLASSES,
    ignore_index: int = IGNORE_INDEX,
    shard: Shard | None = None,
) -> torch.Tensor:
    """lambda_fd * mean over thing-class cells of ||f_student - f_imnet||_2 (over channels).

    Args:
        f_student: (B, C, h, w) last-stage features of the student on the (LR) source image.
        f_imnet: (B, C, h, w) the same from the frozen ImageNet encoder (no gradient taken).
        label: (B, H, W) source label at full resolution; downscaled by majority with factor
            W // w and purity `min_ratio` to decide which cells are things.
        thing_classes: class ids whose cells are regularized.
        weight: lambda_fd.
        shard: in a distributed run, the mean is over the thing cells of the global batch:
            this process's sum times N over the global count, which the gradient average over
            the processes turns into the one-process loss.

    Returns:
        Scalar loss; 0 (with a zero, finite gradient) when no cell is a thing.
    """
    if f_student.shape != f_imnet.shape or f_student.ndim != 4:
        raise ValueError(f"features must be equal (B, C, h, w): {f_student.shape}, {f_imnet.shape}")
    scale_factor = label.shape[-1] // f_student.shape[-1]
    cell_label = downscale_label_by_majority(
        label, scale_factor, min_ratio, num_classes, ignore_index
    )  # (B, h, w)
    if cell_label.shape != (f_student.shape[0], *f_student.shape[2:]):
        raise ValueError(f"label grid {tuple(cell_label.shape)} does not match the features")
    things = torch.as_tensor(list(thing_classes), device=label.device)
    mask = torch.isin(cell_label, things)  # (B, h, w)
    distance = torch.norm(f_student - f_imnet.detach(), p=2, dim=1)  # (B, h, w)
    masked_sum = torch.where(mask, distance, torch.zeros_like(distance)).sum()
    if shard is None or not shard.distributed:
        return weight * masked_sum / mask.sum().clamp(min=1)
    return weight * masked_sum * shard.world / shard.total(mask.sum()).clamp(min=1)
