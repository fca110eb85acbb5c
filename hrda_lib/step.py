"""One training iteration of HRDA's UDA recipe, and the state it updates.

One iteration (reference spec 3.1): EMA update of the teacher, a source pass (HRDA loss) with the
ImageNet feature distance, teacher pseudo-labels on the un-augmented target, ClassMix + strong
augmentation, a mixed pass weighted by the pseudo-label quality, optionally MIC's masked pass, and
one AdamW step for the accumulated gradients. The AdvSeg and MinEnt baselines of Table 2 replace
the self-training passes with an adversarial or entropy loss on the target (`alignment.py`);
domain generalization adds SHADE's style hallucination to the source pass (`shade.py`).
`train_step` computes and updates, nothing else; logging, validation and checkpoints happen in
`hrda_lib.train`. In a distributed run (`hrda_lib.distributed`) each process steps on its share of
the batch with the global batch's draws and statistics, and the gradients are averaged before the
update.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from functools import partial

import numpy as np
import torch
from torch import nn
from torch.profiler import record_function

from hrda_lib import alignment, augment, masking, shade, uda
from hrda_lib.config import ExperimentConfig
from hrda_lib.crops import crop
from hrda_lib.distributed import ONE_PROCESS, Shard
from hrda_lib.errors import UnknownNameError, UsageError
from hrda_lib.imagenet_weights import load_imagenet_encoder
from hrda_lib.model import build_segmentor, resize, segmentation_loss
from hrda_lib.optim import build_optimizer, set_lr
from hrda_lib.paths import resolve_weights


@dataclass
class TrainState:
    """What changes during training, and goes into a checkpoint whole (`state_dict`)."""

    model: nn.Module  # the student, evaluated and reported
    teacher: nn.Module | None  # EMA teacher (None without self-training)
    imnet_encoder: nn.Module | None  # frozen ImageNet encoder for feature distance
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # detail boxes, augmentation, MIC masks, SHADE mixtures
    classmix_rng: np.random.Generator  # ClassMix class draws
    iteration: int = 0
    discriminator: nn.Module | None = None  # AdvSeg's domain discriminator
    discriminator_optimizer: torch.optim.Optimizer | None = None  # its Adam
    style_prototypes: tuple[torch.Tensor, torch.Tensor] | None = None  # SHADE (k, C) mean, std

    def state_dict(self) -> dict:
        """Every field in a saveable form: modules and optimizers by their state dicts,
        generators by their states, the rest as they are."""
        return {f.name: _saved(getattr(self, f.name)) for f in fields(self)}

    def load_state_dict(self, payload: dict) -> None:
        """Restore every field from `state_dict()` (tensors onto the model's device)."""
        device = next(self.model.parameters()).device
        for f in fields(self):
            current, saved = getattr(self, f.name), payload[f.name]
            if isinstance(current, nn.Module | torch.optim.Optimizer):
                current.load_state_dict(saved)
            elif isinstance(current, torch.Generator):
                current.set_state(saved)
            elif isinstance(current, np.random.Generator):
                current.bit_generator.state = saved
            elif isinstance(saved, tuple):
                setattr(self, f.name, tuple(t.to(device) for t in saved))
            else:
                setattr(self, f.name, saved)


def _saved(value):
    if isinstance(value, nn.Module | torch.optim.Optimizer):
        return value.state_dict()
    if isinstance(value, torch.Generator):
        return value.get_state()
    if isinstance(value, np.random.Generator):
        return value.bit_generator.state
    return value


@dataclass(frozen=True)
class UDAMethod:
    """What a UDA method of `UDAConfig.method` does besides the supervised source pass."""

    target_pass: Callable[..., None] | None  # (state, batch, cfg, source_fused, logs, shard)
    teacher: bool = False  # an EMA teacher makes pseudo-labels (self-training)
    discriminator: bool = False  # AdvSeg's domain discriminator and its optimizer


def uda_method(cfg: ExperimentConfig) -> UDAMethod:
    """The table entry of `cfg.uda.method` (one line naming the valid methods if unknown)."""
    if cfg.uda.method not in UDA_METHODS:
        raise UnknownNameError(
            f"unknown UDA method {cfg.uda.method!r}; expected one of {', '.join(UDA_METHODS)}"
        )
    return UDA_METHODS[cfg.uda.method]


def build_state(cfg: ExperimentConfig, device: torch.device) -> TrainState:
    """Student (with ImageNet weights if configured), teacher, ImageNet copy, optimizer, RNGs."""
    method = uda_method(cfg)
    torch.manual_seed(cfg.seed)
    model = build_segmentor(cfg.model)
    if cfg.pretrained:
        report = load_imagenet_encoder(model.encoder, resolve_weights(cfg.pretrained))
        if report.missing:
            raise UsageError(f"{cfg.pretrained}: encoder weights missing: {report.missing[:8]}")
    if cfg.activation_checkpointing:
        model.encoder.set_grad_checkpointing(True)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    teacher = uda.create_ema_teacher(model) if method.teacher else None
    if cfg.compile:  # in place: parameter names (and checkpoints) stay as they are
        for module in model.children():
            module.compile()
    imnet = None
    if cfg.uda.fd_weight > 0:
        imnet = copy.deepcopy(model.encoder).eval().requires_grad_(False)
    optimizer = build_optimizer(model.encoder, model.head_parameters(), cfg.optimizer)
    generator = torch.Generator().manual_seed(cfg.seed)
    state = TrainState(model, teacher, imnet, optimizer, generator, np.random.default_rng(cfg.seed))
    if method.discriminator:
        state.discriminator = alignment.build_discriminator(
            cfg.model.num_classes, cfg.uda.adversarial
        ).to(device)
        state.discriminator_optimizer = alignment.build_discriminator_optimizer(
            state.discriminator, cfg.uda.adversarial
        )
    return state


def _autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast (fp32 master weights) for "bf16", and for "auto" on CUDA; else fp32."""
    enabled = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def train_step(
    state: TrainState, batch: dict, cfg: ExperimentConfig, shard: Shard = ONE_PROCESS
) -> dict[str, torch.Tensor]:
    """One UDA iteration on a batch; updates `state` and returns the (detached) loss terms.

    Every pass back-propagates at once (its graph is freed before the next one) and the
    gradients accumulate into one optimizer step, as in the official code.

    Args:
        batch: `img` (B, 3, H, W), `gt_semantic_seg` (B, H, W) source; `target_img`,
            `target_valid_pseudo_mask` (B, H, W) target, all on the model's device (in a
            distributed run, this process's share of the batch).
        shard: this process's place in a distributed run (one process by default).
    """
    state.model.train()
    set_lr(state.optimizer, state.iteration, cfg.optimizer)
    state.optimizer.zero_grad(set_to_none=True)
    if state.teacher is not None:
        uda.update_ema(state.teacher, state.model, state.iteration, cfg.uda.ema_alpha)
    logs: dict[str, torch.Tensor] = {}
    source_fused = _source_pass(state, batch, cfg, logs, shard)
    method = uda_method(cfg)
    if method.target_pass is not None:
        method.target_pass(state, batch, cfg, source_fused, logs, shard)
    shard.average_gradients([state.model, state.discriminator])
    with record_function("optimizer_step"):
        state.optimizer.step()
        if state.discriminator_optimizer is not None:
            state.discriminator_optimizer.step()
    state.iteration += 1
    return logs


def _source_pass(
    state: TrainState, batch: dict, cfg: ExperimentConfig, logs: dict, shard: Shard
) -> torch.Tensor:
    """Supervised HRDA loss on the source, plus the ImageNet feature distance; backward.

    Returns:
        The detached fused source logits (B, K, H/os, W/os), which AdvSeg's discriminator sees.
    """
    model, mcfg = state.model, cfg.model
    source, label = batch["img"], batch["gt_semantic_seg"]
    n = source.shape[0]
    style, seen_label = None, label
    if cfg.uda.shade is not None:  # SHADE: [originals, hallucinated] after stage 1
        if state.style_prototypes is None:
            raise RuntimeError("SHADE needs style prototypes: the loop refreshes them first")
        style = partial(
            shade.double_with_styles,
            prototypes=state.style_prototypes,
            config=cfg.uda.shade,
            generator=state.generator,
        )
        seen_label = torch.cat([label, label])
    with _autocast(source.device, cfg.precision), record_function("source_pass"):
        out = model.forward_train(source, state.generator, style)
        losses = segmentation_loss(out, seen_label, mcfg)
        loss = losses["total"]
        if style is not None:
            consistency = shade.style_consistency_loss(
                out.fused[:n], out.fused[n:], cfg.uda.shade.consistency_weight
            )
            loss = loss + consistency
            logs["loss_style_consistency"] = consistency.detach()
        if state.imnet_encoder is not None:  # on the original images (the first n) only
            context_scale = mcfg.context_scale if mcfg.multi_resolution else 1.0
            with torch.no_grad():  # the ImageNet model sees what the student's LR branch sees
                imnet_features = state.imnet_encoder(resize(source, context_scale))[-1]
            fd = uda.feature_distance_loss(
                out.context_features[-1][:n],
                imnet_features,
                label,
                cfg.uda.fd_classes,
                cfg.uda.fd_min_ratio,
                cfg.uda.fd_weight,
                shard=shard,
            )
            if cfg.uda.fd_on_detail and out.detail_box is not None:  # the two terms are summed
                with torch.no_grad():
                    imnet_detail = state.imnet_encoder(crop(source, out.detail_box))[-1]
                fd = fd + uda.feature_distance_loss(
                    out.detail_features[-1][:n],
                    imnet_detail,
                    crop(label, out.detail_box),
                    cfg.uda.fd_classes,
                    cfg.uda.fd_min_ratio,
                    cfg.uda.fd_weight,
                    shard=shard,
                )
            loss = loss + fd
            logs["loss_fd"] = fd.detach()
    with record_function("source_backward"):
        loss.backward()
    logs |= {f"loss_source_{k}": v.detach() for k, v in losses.items()}
    return out.fused[:n].detach()


def _self_training_pass(
    state: TrainState, batch: dict, cfg: ExperimentConfig, source_fused, logs: dict, shard: Shard
) -> None:
    """DACS: teacher pseudo-labels, ClassMix + strong augmentation, the weighted mixed loss;
    then MIC's masked pass on the same pseudo-labels, if configured. The per-image draws are
    made for the global batch, of which this process keeps its rows."""
    model, device = state.model, batch["img"].device
    source, label, target = batch["img"], batch["gt_semantic_seg"], batch["target_img"]
    uda.set_teacher_mode(state.teacher)
    with torch.no_grad(), _autocast(device, cfg.precision), record_function("pseudo_labels"):
        teacher_logits = state.teacher.encode_decode(target).float()
    valid = batch["target_valid_pseudo_mask"].float()
    pseudo_label, pseudo_weight = uda.pseudo_label_and_weight(
        teacher_logits, cfg.uda.pseudo_threshold, valid, shard=shard
    )
    rows = shard.rows(source.shape[0])
    mask = uda.classmix_masks(shard.gather(label), state.classmix_rng)[rows].to(device)
    params = augment.sample_strong_aug_params(
        source.shape[0] * shard.world,
        state.generator,
        cfg.uda.color_jitter_probability,
        cfg.uda.color_jitter_strength,
        cfg.uda.blur,
    )
    params = augment.select_images(params, rows)
    mixed = augment.strong_augment(uda.mix(mask, source, target), params)
    mixed_label = uda.mix(mask, label, pseudo_label)
    mixed_weight = uda.mix(mask, torch.ones_like(pseudo_weight), pseudo_weight)
    with _autocast(device, cfg.precision), record_function("mixed_pass"):
        mix_losses = segmentation_loss(
            model.forward_train(mixed, state.generator), mixed_label, cfg.model, mixed_weight
        )
    with record_function("mixed_backward"):
        mix_losses["total"].backward()
    logs |= {f"loss_mixed_{k}": v.detach() for k, v in mix_losses.items()}
    logs["pseudo_weight"] = pseudo_weight.max()  # the quality scalar q (margins are 0)
    if cfg.uda.mic is not None:
        _masked_pass(state, batch, cfg, pseudo_label, pseudo_weight, logs, shard)


def _masked_pass(
    state: TrainState,
    batch: dict,
    cfg: ExperimentConfig,
    pseudo_label: torch.Tensor,
    pseudo_weight: torch.Tensor,
    logs: dict,
    shard: Shard,
) -> None:
    """MIC: the HRDA loss of the masked (colour-augmented) image against the pseudo-labels."""
    mic = cfg.uda.mic
    img, mic_label, mic_weight = masking.mic_inputs(
        mic.mode,
        batch["img"],
        batch["gt_semantic_seg"],
        batch["target_img"],
        pseudo_label,
        pseudo_weight,
    )
    masked, _, _ = masking.masked_batch(
        mic.mode,
        img,
        state.generator,
        mic.block_size,
        mic.ratio,
        cfg.uda.color_jitter_probability,
        cfg.uda.color_jitter_strength,
        batch_size=img.shape[0] * shard.world,
        rows=shard.rows(img.shape[0]),
    )
    with _autocast(img.device, cfg.precision), record_function("mic_pass"):
        mic_losses = segmentation_loss(
            state.model.forward_train(masked, state.generator), mic_label, cfg.model, mic_weight
        )
    # lambda_m scales the fused term only, as the official MIC does (the detail term is kept).
    loss = mic_losses["total"] + (mic.weight - 1) * mic_losses["fused"]
    with record_function("mic_backward"):
        loss.backward()
    logs["loss_mic_total"] = loss.detach()


def _minent_pass(
    state: TrainState,
    batch: dict,
    cfg: ExperimentConfig,
    source_fused: torch.Tensor,
    logs: dict,
    shard: Shard,
) -> None:
    """MinEnt: the mean entropy of the student's fused target prediction (`alignment`)."""
    target = batch["target_img"]
    with _autocast(target.device, cfg.precision), record_function("target_pass"):
        target_fused = state.model.forward_train(target, state.generator).fused
        loss = alignment.entropy_loss(target_fused, cfg.uda.entropy_weight)
        logs["loss_entropy"] = loss.detach()
    with record_function("target_backward"):
        loss.backward()


def _advseg_pass(
    state: TrainState,
    batch: dict,
    cfg: ExperimentConfig,
    source_fused: torch.Tensor,
    logs: dict,
    shard: Shard,
) -> None:
    """AdvSeg on the student's fused target prediction (`alignment`): the target output is
    pushed towards the discriminator's source label (discriminator frozen), then the
    discriminator learns source (0) vs target (1) on both detached outputs."""
    target = batch["target_img"]
    size = tuple(target.shape[-2:])
    adv, discriminator = cfg.uda.adversarial, state.discriminator
    with _autocast(target.device, cfg.precision), record_function("target_pass"):
        target_fused = state.model.forward_train(target, state.generator).fused
        discriminator.requires_grad_(False)
        domain = discriminator(alignment.discriminator_input(target_fused, size))
        loss = adv.weight * alignment.gan_loss(domain, alignment.SOURCE_DOMAIN, adv.gan)
        logs["loss_adversarial"] = loss.detach()
    with record_function("target_backward"):
        loss.backward()
    discriminator.requires_grad_(True)
    lr = alignment.discriminator_lr(state.iteration, cfg.optimizer.max_iters, adv)
    for group in state.discriminator_optimizer.param_groups:
        group["lr"] = lr
    state.discriminator_optimizer.zero_grad(set_to_none=True)
    with _autocast(target.device, cfg.precision), record_function("discriminator_pass"):
        d_loss = 0.5 * (
            alignment.gan_loss(
                discriminator(alignment.discriminator_input(source_fused, size)),
                alignment.SOURCE_DOMAIN,
                adv.gan,
            )
            + alignment.gan_loss(
                discriminator(alignment.discriminator_input(target_fused.detach(), size)),
                alignment.TARGET_DOMAIN,
                adv.gan,
            )
        )
    with record_function("discriminator_backward"):
        d_loss.backward()
    logs["loss_discriminator"] = d_loss.detach()


@torch.no_grad()
def style_prototypes_of(
    state: TrainState, cfg: ExperimentConfig, images: Iterable[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """SHADE: the (k, C) prototype means and stds, by farthest-point sampling over the stage-1
    channel statistics of source `images` ((1, 3, H, W) each) under the current encoder (eval
    mode, at the scale the context branch sees them). The loop stores them in the state."""
    encoder, device = state.model.encoder, next(state.model.parameters()).device
    scale = cfg.model.context_scale if cfg.model.multi_resolution else 1.0
    was_training = encoder.training
    encoder.eval()
    features = (encoder.first_stage(resize(img.to(device), scale)) for img in images)
    means, stds = shade.collect_styles(features, cfg.uda.shade.eps)
    encoder.train(was_training)
    return shade.style_prototypes(means, stds, cfg.uda.shade.num_prototypes, state.generator)


# A new UDA method is one entry here (its pass in a module of its own, as `alignment`'s).
UDA_METHODS: dict[str, UDAMethod] = {
    "dacs": UDAMethod(_self_training_pass, teacher=True),  # DACS / the DAFormer recipe, + MIC
    "advseg": UDAMethod(_advseg_pass, discriminator=True),
    "minent": UDAMethod(_minent_pass),
    "source_only": UDAMethod(None),  # also domain generalization (with SHADE)
}
