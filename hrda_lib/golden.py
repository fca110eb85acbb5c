"""Parity with the official HRDA code on its golden fixtures (the compact copy in `tests/golden`).

The fixtures hold an official-format checkpoint and the official code's outputs on a seeded image;
`parity_table` recomputes each recorded tensor with this package and reports the max abs
difference (the official code itself varies by ~1.5e-5 between thread counts).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from hrda_lib.checkpoints import load_official_checkpoint
from hrda_lib.inference import slide_inference

# Tensors of io.pt compared elementwise (the full-resolution outputs are pinned by rows and sums).
RECORDED_TENSORS: tuple[str, ...] = (
    *(f"train_lr_feats[{i}]" for i in range(4)),
    "train_lr_logits",
    "train_att",
    "train_lr_seg_out",
    "train_hr_logits",
    "train_fused",
    "pl_lr_logits",
    "pl_att",
    "pl_hr_slide_logits",
    "pl_fused",
    "pl_logits_fullres_rows",
    "test_merged_logits_rows",
    "test_max_prob",
)


def load_golden_io(golden_dir: Path) -> dict:
    """The recorded inputs/outputs, with the normalized input image added as `img`."""
    io = torch.load(Path(golden_dir) / "hrda_mitb0" / "io.pt", weights_only=False)
    mean, std = io["img_norm_mean"].view(1, 3, 1, 1), io["img_norm_std"].view(1, 3, 1, 1)
    io["img"] = (io["img_u8"].float() - mean) / std
    return io


@torch.no_grad()
def recompute_golden_tensors(model: torch.nn.Module, io: dict) -> dict[str, torch.Tensor]:
    """Our values of every recorded tensor, keyed like io.pt (training, pseudo-label, test)."""
    image = io["img"]
    context = image[..., : image.shape[2]]  # the left square, as the fixture's training forward
    train = model.forward_multires(context, tuple(int(v) for v in io["train_crop_box"]))
    slide = model.forward_slide(image)
    full = F.interpolate(slide.fused, size=image.shape[2:], mode="bilinear", align_corners=False)
    merged = slide_inference(model, image, window=image.shape[2], stride=image.shape[2] // 2)
    ours = {f"train_lr_feats[{i}]": f for i, f in enumerate(train.context_features)}
    ours |= {
        "train_lr_logits": train.context_logits,
        "train_att": train.attention,
        "train_lr_seg_out": train.context_weighted,
        "train_hr_logits": train.detail_logits,
        "train_fused": train.fused,
        "pl_lr_logits": slide.context_logits,
        "pl_att": slide.attention,
        "pl_hr_slide_logits": slide.detail_logits,
        "pl_fused": slide.fused,
        "pl_logits_fullres_rows": full[:, :, io["pl_rows_kept"]],
        "test_merged_logits_rows": merged[:, :, io["test_rows_kept"]],
        "test_max_prob": merged.softmax(dim=1).max(dim=1).values,
    }
    # Not tensors of io.pt, but what the tests check besides: full outputs and the loss input.
    prob = merged.softmax(dim=1)
    ours["test_seg_pred"] = prob.argmax(dim=1)
    ours["test_softmax_class_sums"] = prob.double().sum(dim=(0, 2, 3))
    ours["pl_logits_fullres"] = full
    ours["train_output"] = train
    return ours


def reference_tensor(io: dict, key: str) -> torch.Tensor:
    """The official value of `key` (feature levels are stored as a list)."""
    if key.startswith("train_lr_feats["):
        return io["train_lr_feats"][int(key[-2])]
    return io[key]


def parity_table(golden_dir: Path) -> pd.DataFrame:
    """Max abs difference of every recorded tensor: columns tensor, shape, max_abs_diff, ref_max."""
    model = load_official_checkpoint(Path(golden_dir) / "hrda_mitb0" / "checkpoint.pth")
    io = load_golden_io(golden_dir)
    rows = []
    ours = recompute_golden_tensors(model, io)
    for key in RECORDED_TENSORS:
        ref = reference_tensor(io, key)
        rows.append(
            {
                "tensor": key,
                "shape": "x".join(map(str, ref.shape)),
                "max_abs_diff": (ours[key] - ref).abs().max().item(),
                "ref_max_abs": ref.abs().max().item(),
            }
        )
    return pd.DataFrame(rows)
