"""One self-training iteration, drawn: what DAFormer's recipe (as HRDA and MIC use it) makes of
a source and a target crop, and the loss terms of that very iteration.

`drawn_step` calls the library's own functions in the order `step.train_step` calls them, with
the same random draws (a test checks that its losses are those of `train_step`):

1. the source crop (rare class sampling chose a class and a crop showing it) and its label;
2. the EMA teacher's prediction on the target crop: the pseudo-label, its confidence (max
   softmax), and its weight: the quality q (the share of pixels above the threshold τ) times
   the margin mask;
3. ClassMix: half of the source crop's classes pasted onto the target crop, with the source
   label and weight 1 there, the pseudo-label and its weight elsewhere;
4. strong augmentation of the mixed image (colour jitter, blur);
5. MIC (when configured): the target crop, colour-augmented, with patches masked out, trained
   towards the same pseudo-labels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch

from hrda_lib import augment, masking, uda
from hrda_lib.classes import CLASSES
from hrda_lib.config import ExperimentConfig
from hrda_lib.errors import UsageError
from hrda_lib.model import segmentation_loss
from hrda_lib.plots import class_patches
from hrda_lib.step import TrainState, build_state, train_step
from hrda_lib.viz import colorize, to_rgb


@dataclass
class RecipeStep:
    """What one self-training iteration sees (first image of the batch) and its loss terms."""

    source: np.ndarray  # (H, W, 3) RGB
    source_label: np.ndarray  # (H, W) train ids
    rare_class: str | None  # the class rare class sampling drew for this crop
    target: np.ndarray
    pseudo_label: np.ndarray
    confidence: np.ndarray  # (H, W) the teacher's max softmax probability
    threshold: float  # τ
    quality: float  # q: the share of the batch's pixels with confidence ≥ τ
    pseudo_weight: np.ndarray  # (H, W) q inside the margins, 0 on them
    mix_mask: np.ndarray  # (H, W) bool, True where the source is pasted
    mixed: np.ndarray  # the mixed image before augmentation
    augmented: np.ndarray  # after strong augmentation: what the student is trained on
    mixed_label: np.ndarray
    mixed_weight: np.ndarray
    masked: np.ndarray | None  # MIC's masked image of the target crop (None without MIC)
    mixed_loss_drawn: float  # the student's loss on `augmented` as drawn here
    losses: dict[str, float]  # train_step's logs of this iteration (loss_mixed_total: the same)


def state_of(cfg: ExperimentConfig, model: torch.nn.Module, iteration: int) -> TrainState:
    """A training state of `cfg` at `iteration` whose student and EMA teacher both hold
    `model`'s weights (a finished run's teacher is its student's running average, close to
    it), for drawing a late iteration without the run's training checkpoint."""
    state = build_state(cfg, torch.device("cpu"))
    state.model.load_state_dict(model.state_dict())
    if state.teacher is not None:
        state.teacher.load_state_dict(model.state_dict())
    state.iteration = iteration
    return state


def drawn_step(state: TrainState, batch: dict, cfg: ExperimentConfig, seed: int = 0) -> RecipeStep:
    """Draw one self-training iteration of `state` on `batch` (a batch of the training loader),
    and run `train_step` on a copy of `state` for its losses; `state` itself is left as it is.
    `seed` seeds the global torch RNG (drop path) of both."""
    if state.teacher is None:
        raise UsageError(f"{cfg.name} does not self-train (UDA method {cfg.uda.method})")
    state = copy.deepcopy(state)
    before = copy.deepcopy(state)
    source, label, target = batch["img"], batch["gt_semantic_seg"], batch["target_img"]
    torch.manual_seed(seed)
    with torch.no_grad():  # the draws train_step makes, in its order
        uda.update_ema(state.teacher, state.model, state.iteration, cfg.uda.ema_alpha)
        state.model.train()
        state.model.forward_train(source, state.generator)  # the source pass's detail box
        uda.set_teacher_mode(state.teacher)
        teacher_logits = state.teacher.encode_decode(target).float()
    confidence = torch.softmax(teacher_logits, dim=1).amax(dim=1)
    pseudo_label, pseudo_weight = uda.pseudo_label_and_weight(
        teacher_logits, cfg.uda.pseudo_threshold, batch["target_valid_pseudo_mask"].float()
    )
    mask = uda.classmix_masks(label, state.classmix_rng)
    params = augment.sample_strong_aug_params(
        source.shape[0],
        state.generator,
        cfg.uda.color_jitter_probability,
        cfg.uda.color_jitter_strength,
        cfg.uda.blur,
    )
    mixed = uda.mix(mask, source, target)
    augmented = augment.strong_augment(mixed, params)
    mixed_label = uda.mix(mask, label, pseudo_label)
    mixed_weight = uda.mix(mask, torch.ones_like(pseudo_weight), pseudo_weight)
    with torch.no_grad():  # the student's loss on the mixed image, as train_step computes it
        out = state.model.forward_train(augmented, state.generator)
        mixed_loss = segmentation_loss(out, mixed_label, cfg.model, mixed_weight)["total"]
    masked, target_row = None, 0
    if cfg.uda.mic is not None:
        mic = cfg.uda.mic
        img, _, _ = masking.mic_inputs(mic.mode, source, label, target, pseudo_label, pseudo_weight)
        target_row = 1 if mic.mode in ("separate", "separateaug") else 0  # (source 0, target 0)
        masked = masking.masked_batch(
            mic.mode,
            img,
            state.generator,
            mic.block_size,
            mic.ratio,
            cfg.uda.color_jitter_probability,
            cfg.uda.color_jitter_strength,
        )[0]
    torch.manual_seed(seed)
    logs = train_step(before, batch, cfg)
    rare = batch.get("rare_class")
    return RecipeStep(
        source=to_rgb(source[0]),
        source_label=label[0].numpy(),
        rare_class=CLASSES[int(rare[0])] if rare is not None else None,
        target=to_rgb(target[0]),
        pseudo_label=pseudo_label[0].numpy(),
        confidence=confidence[0].numpy(),
        threshold=cfg.uda.pseudo_threshold,
        quality=float(pseudo_weight.max()),
        pseudo_weight=pseudo_weight[0].numpy(),
        mix_mask=mask[0, 0].bool().numpy(),
        mixed=to_rgb(mixed[0]),
        augmented=to_rgb(augmented[0]),
        mixed_label=mixed_label[0].numpy(),
        mixed_weight=mixed_weight[0].numpy(),
        masked=to_rgb(masked[target_row]) if masked is not None else None,
        mixed_loss_drawn=float(mixed_loss),
        losses={k: float(v) for k, v in logs.items()},
    )


def recipe_figure(step: RecipeStep) -> plt.Figure:
    """The iteration as panels, in the order the recipe makes them."""
    rare = f" (rare class sampling drew: {step.rare_class})" if step.rare_class else ""
    panels = [
        ("1. source crop" + rare, step.source, {}),
        ("source label", colorize(step.source_label), {}),
        ("2. target crop (no label)", step.target, {}),
        ("teacher's pseudo-label", colorize(step.pseudo_label), {}),
        (f"teacher's confidence (contour: τ = {step.threshold})", step.confidence, {"vmin": 0}),
        (f"pseudo-label weight: q = {step.quality:.2f}, margins 0", step.pseudo_weight, {}),
        ("3. ClassMix mask (white: pasted source classes)", step.mix_mask, {"cmap": "gray"}),
        ("mixed image", step.mixed, {}),
        ("4. after strong augmentation (the student's input)", step.augmented, {}),
        ("mixed label", colorize(step.mixed_label), {}),
        ("mixed weight (1 on source pixels)", step.mixed_weight, {"vmin": 0, "vmax": 1}),
    ]
    if step.masked is not None:
        panels.append(("5. MIC: masked target image", step.masked, {}))
    ncols = 4
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.2 * nrows + 1.2))
    for ax, (title, image, options) in zip(axes.flat, panels, strict=False):
        shown = ax.imshow(image, **({"cmap": "viridis"} | options) if image.ndim == 2 else {})
        if image.ndim == 2 and image.dtype != bool:
            fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.02)
        if title.startswith("teacher's confidence"):
            ax.contour(image >= step.threshold, levels=[0.5], colors="white", linewidths=0.8)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    classes = np.unique(np.concatenate([step.source_label.ravel(), step.pseudo_label.ravel()]))
    handles = class_patches([int(c) for c in classes if c < len(CLASSES)])
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 10), fontsize=8)
    terms = {
        "loss_source_total": "source",
        "loss_fd": "feature distance",
        "loss_mixed_total": "mixed (weighted)",
        "loss_mic_total": "MIC",
    }
    shown = ", ".join(
        f"{name} {step.losses[k]:.3f}" for k, name in terms.items() if k in step.losses
    )
    fig.suptitle(
        "One self-training iteration of the recipe (first image of the batch)\n"
        f"its losses: {shown}",
        y=1.0,
    )
    fig.tight_layout(rect=(0, 0.08, 1, 0.97))
    return fig
