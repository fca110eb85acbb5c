"""UDA training of HRDA: the DACS self-training step with HRDA's multi-resolution student, and a
resumable training loop.

One iteration (reference spec 3.1): EMA update of the teacher, a source pass (HRDA loss) with the
ImageNet feature distance, teacher pseudo-labels on the un-augmented target, ClassMix + strong
augmentation, a mixed pass weighted by the pseudo-label quality, optionally MIC's masked pass, and
one AdamW step for the accumulated gradients. The AdvSeg and MinEnt baselines of Table 2 replace
the self-training passes with an adversarial or entropy loss on the target (`alignment.py`).
`train_step` computes and updates, nothing else; logging, validation and checkpoints happen in
`train`.

    python -m hrda_lib.train synthetic_hrda --work-dir work_dirs/synthetic_hrda
    python -m hrda_lib.train --list
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.profiler import record_function
from torch.utils.data import Subset

from hrda_lib import alignment, augment, masking, shade, uda
from hrda_lib.checkpoints import load_imagenet_encoder
from hrda_lib.crops import crop
from hrda_lib.experiment import ExperimentConfig, apply_overrides
from hrda_lib.model import build_segmentor, resize, segmentation_loss
from hrda_lib.optim import build_optimizer, set_lr

CHECKPOINT_FORMAT = "hrda_lib-train-v1"


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is left as it was."""


@dataclass
class TrainState:
    """What changes during training (and goes into a checkpoint)."""

    model: torch.nn.Module  # the student, evaluated and reported
    teacher: torch.nn.Module | None  # EMA teacher (None for source-only training)
    imnet_encoder: torch.nn.Module | None  # frozen ImageNet encoder for feature distance
    optimizer: torch.optim.Optimizer
    generator: torch.Generator  # detail boxes, augmentation and MIC masks
    classmix_rng: np.random.Generator  # ClassMix class draws
    iteration: int = 0
    discriminator: torch.nn.Module | None = None  # AdvSeg's domain discriminator
    discriminator_optimizer: torch.optim.Optimizer | None = None  # its Adam
    style_hallucination: shade.StyleHallucination | None = None  # SHADE (DG), with prototypes


@dataclass
class TrainResult:
    work_dir: Path
    checkpoint: Path
    metrics: pd.DataFrame
    wall_time_s: float


def build_state(cfg: ExperimentConfig, device: torch.device) -> TrainState:
    """Student (with ImageNet weights if configured), teacher, ImageNet copy, optimizer, RNGs."""
    torch.manual_seed(cfg.seed)
    model = build_segmentor(cfg.model)
    if cfg.pretrained:
        report = load_imagenet_encoder(model.encoder, cfg.pretrained)
        if report.missing:
            raise ValueError(f"{cfg.pretrained}: encoder weights missing: {report.missing[:8]}")
    if cfg.activation_checkpointing and hasattr(model.encoder, "mit"):
        model.encoder.mit.set_grad_checkpointing(True)
    model.to(device)
    if cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    teacher = uda.create_ema_teacher(model) if cfg.uda.self_training else None
    if cfg.compile:  # in place: parameter names (and checkpoints) stay as they are
        for module in (model.encoder, model.decode_head, model.scale_attention_head):
            if module is not None:
                module.compile()
    imnet = None
    if cfg.uda.fd_weight > 0:
        imnet = copy.deepcopy(model.encoder).eval().requires_grad_(False)
    heads = [m for m in (model.decode_head, model.scale_attention_head) if m is not None]
    optimizer = build_optimizer(
        model.encoder,
        heads,
        cfg.optimizer,
        encoder_norm_no_decay=cfg.model.encoder != "resnet101_v1c",
    )
    generator = torch.Generator().manual_seed(cfg.seed)
    state = TrainState(model, teacher, imnet, optimizer, generator, np.random.default_rng(cfg.seed))
    if cfg.uda.method == "advseg":
        state.discriminator = alignment.build_discriminator(
            cfg.model.num_classes, cfg.uda.adversarial
        ).to(device)
        state.discriminator_optimizer = alignment.build_discriminator_optimizer(
            state.discriminator, cfg.uda.adversarial
        )
    if cfg.uda.shade is not None:
        state.style_hallucination = shade.StyleHallucination(
            model.encoder.channels[0], cfg.uda.shade
        ).to(device)
    return state


def _autocast(device: torch.device, precision: str = "auto"):
    """bf16 autocast (fp32 master weights) for "bf16", and for "auto" on CUDA; else fp32."""
    enabled = precision == "bf16" or (precision == "auto" and device.type == "cuda")
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def train_step(state: TrainState, batch: dict, cfg: ExperimentConfig) -> dict[str, torch.Tensor]:
    """One UDA iteration on a batch; updates `state` and returns the (detached) loss terms.

    Every pass back-propagates at once (its graph is freed before the next one) and the
    gradients accumulate into one optimizer step, as in the official code.

    Args:
        batch: `img` (B, 3, H, W), `gt_semantic_seg` (B, H, W) source; `target_img`,
            `target_valid_pseudo_mask` (B, H, W) target, all on the model's device.
    """
    state.model.train()
    set_lr(state.optimizer, state.iteration, cfg.optimizer)
    state.optimizer.zero_grad(set_to_none=True)
    if state.teacher is not None:
        uda.update_ema(state.teacher, state.model, state.iteration, cfg.uda.ema_alpha)
    logs: dict[str, torch.Tensor] = {}
    source_fused = _source_pass(state, batch, cfg, logs)
    if cfg.uda.method == "dacs":
        pseudo_label, pseudo_weight = _self_training_pass(state, batch, cfg, logs)
        if cfg.uda.mic is not None:
            _masked_pass(state, batch, cfg, pseudo_label, pseudo_weight, logs)
    elif cfg.uda.method in ("advseg", "minent"):
        _alignment_pass(state, batch, cfg, source_fused, logs)
    with record_function("optimizer_step"):
        state.optimizer.step()
        if state.discriminator_optimizer is not None:
            state.discriminator_optimizer.step()
    state.iteration += 1
    return logs


def _source_pass(state: TrainState, batch: dict, cfg: ExperimentConfig, logs: dict) -> torch.Tensor:
    """Supervised HRDA loss on the source, plus the ImageNet feature distance; backward.

    Returns:
        The detached fused source logits (B, K, H/os, W/os), which AdvSeg's discriminator sees.
    """
    model, mcfg = state.model, cfg.model
    source, label = batch["img"], batch["gt_semantic_seg"]
    n = source.shape[0]
    style, seen_label = None, label
    if state.style_hallucination is not None:  # SHADE: [originals, hallucinated] after stage 1
        style = partial(state.style_hallucination, generator=state.generator)
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
                out.lr_features[-1][:n],
                imnet_features,
                label,
                cfg.uda.fd_classes,
                cfg.uda.fd_min_ratio,
                cfg.uda.fd_weight,
            )
            if cfg.uda.fd_on_detail and out.detail_box is not None:  # the two terms are summed
                with torch.no_grad():
                    imnet_detail = state.imnet_encoder(crop(source, out.detail_box))[-1]
                fd = fd + uda.feature_distance_loss(
                    out.hr_features[-1][:n], imnet_detail, crop(label, out.detail_box),
                    cfg.uda.fd_classes, cfg.uda.fd_min_ratio, cfg.uda.fd_weight,
                )  # fmt: skip
            loss = loss + fd
            logs["loss_fd"] = fd.detach()
    with record_function("source_backward"):
        loss.backward()
    logs |= {f"loss_source_{k}": v.detach() for k, v in losses.items()}
    return out.fused[:n].detach()


def _self_training_pass(
    state: TrainState, batch: dict, cfg: ExperimentConfig, logs: dict
) -> tuple[torch.Tensor, torch.Tensor]:
    """DACS: teacher pseudo-labels, ClassMix + strong augmentation, the weighted mixed loss.

    Returns:
        The target pseudo-labels (B, H, W) and their weights (B, H, W), which MIC reuses.
    """
    model, device = state.model, batch["img"].device
    source, label, target = batch["img"], batch["gt_semantic_seg"], batch["target_img"]
    uda.set_teacher_mode(state.teacher)
    with torch.no_grad(), _autocast(device, cfg.precision), record_function("pseudo_labels"):
        teacher_logits = state.teacher.encode_decode(target).float()
    valid = batch["target_valid_pseudo_mask"].float()
    pseudo_label, pseudo_weight = uda.pseudo_label_and_weight(
        teacher_logits, cfg.uda.pseudo_threshold, valid
    )
    mask = uda.classmix_masks(label, state.classmix_rng).to(device)
    params = augment.sample_strong_aug_params(
        source.shape[0],
        state.generator,
        cfg.uda.color_jitter_probability,
        cfg.uda.color_jitter_strength,
        cfg.uda.blur,
    )
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
    return pseudo_label, pseudo_weight


def _masked_pass(
    state: TrainState,
    batch: dict,
    cfg: ExperimentConfig,
    pseudo_label: torch.Tensor,
    pseudo_weight: torch.Tensor,
    logs: dict,
) -> None:
    """MIC: the HRDA loss of the masked (colour-augmented) image against the pseudo-labels."""
    mic = cfg.uda.mic
    img, mic_label, mic_weight = masking.mic_inputs(
        mic.mode, batch["img"], batch["gt_semantic_seg"], batch["target_img"], pseudo_label,
        pseudo_weight,
    )  # fmt: skip
    masked, _, _ = masking.masked_batch(
        mic.mode,
        img,
        state.generator,
        mic.block_size,
        mic.ratio,
        cfg.uda.color_jitter_probability,
        cfg.uda.color_jitter_strength,
    )
    with _autocast(img.device, cfg.precision), record_function("mic_pass"):
        mic_losses = segmentation_loss(
            state.model.forward_train(masked, state.generator), mic_label, cfg.model, mic_weight
        )
    with record_function("mic_backward"):
        (mic.weight * mic_losses["total"]).backward()
    logs["loss_mic_total"] = mic_losses["total"].detach()


def _alignment_pass(
    state: TrainState, batch: dict, cfg: ExperimentConfig, source_fused: torch.Tensor, logs: dict
) -> None:
    """AdvSeg or MinEnt on the student's fused target prediction (`hrda_lib.alignment`).

    AdvSeg: the segmentor's target output is pushed towards the discriminator's source label
    (discriminator frozen), then the discriminator learns source (0) vs target (1) on both
    detached outputs. MinEnt: the target prediction's mean entropy.
    """
    target = batch["target_img"]
    size = tuple(target.shape[-2:])
    with _autocast(target.device, cfg.precision), record_function("target_pass"):
        target_fused = state.model.forward_train(target, state.generator).fused
        if cfg.uda.method == "minent":
            loss = alignment.entropy_loss(target_fused, cfg.uda.entropy_weight)
            logs["loss_entropy"] = loss.detach()
        else:
            adv = cfg.uda.adversarial
            state.discriminator.requires_grad_(False)
            domain = state.discriminator(alignment.discriminator_input(target_fused, size))
            loss = adv.weight * alignment.gan_loss(domain, alignment.SOURCE_DOMAIN, adv.gan)
            logs["loss_adversarial"] = loss.detach()
    with record_function("target_backward"):
        loss.backward()
    if cfg.uda.method != "advseg":
        return
    adv, discriminator = cfg.uda.adversarial, state.discriminator
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
def refresh_style_prototypes(
    state: TrainState, cfg: ExperimentConfig, images: Iterable[torch.Tensor]
) -> None:
    """SHADE: pick the prototype styles by farthest-point sampling over the stage-1 channel
    statistics of source `images` ((1, 3, H, W) each) under the current encoder (eval mode, at
    the scale the context branch sees them)."""
    encoder, device = state.model.encoder, next(state.model.parameters()).device
    scale = cfg.model.context_scale if cfg.model.multi_resolution else 1.0
    was_training = encoder.training
    encoder.eval()
    features = (encoder.first_stage(resize(img.to(device), scale)) for img in images)
    means, stds = shade.collect_styles(features, cfg.uda.shade.eps)
    encoder.train(was_training)
    state.style_hallucination.set_prototypes(
        *shade.style_prototypes(means, stds, cfg.uda.shade.num_prototypes, state.generator)
    )


# -- checkpoints ---------------------------------------------------------------------------------


def _state_dict_or_none(module) -> dict | None:
    return module.state_dict() if module is not None else None


def save_checkpoint(state: TrainState, cfg: ExperimentConfig, path: Path) -> None:
    """Everything needed to resume exactly, written to a temporary name and renamed."""
    payload = {
        "format": CHECKPOINT_FORMAT,
        "config": cfg,
        "iteration": state.iteration,
        "model": state.model.state_dict(),
        "teacher": state.teacher.state_dict() if state.teacher is not None else None,
        "imnet_encoder": state.imnet_encoder.state_dict() if state.imnet_encoder else None,
        "optimizer": state.optimizer.state_dict(),
        "discriminator": _state_dict_or_none(state.discriminator),
        "discriminator_optimizer": _state_dict_or_none(state.discriminator_optimizer),
        "style_hallucination": _state_dict_or_none(state.style_hallucination),
        "rng": {
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "generator": state.generator.get_state(),
            "classmix": state.classmix_rng.bit_generator.state,
            "numpy": np.random.get_state(),
            "python": random.getstate(),
        },
    }
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_checkpoint(state: TrainState, path: Path) -> None:
    """Restore `state` (weights, optimizer, iteration, every RNG) from `save_checkpoint`."""
    payload = torch.load(path, map_location="cpu", weights_only=False)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a training checkpoint of hrda_lib.train")
    state.model.load_state_dict(payload["model"])
    if state.teacher is not None:
        state.teacher.load_state_dict(payload["teacher"])
    if state.imnet_encoder is not None:
        state.imnet_encoder.load_state_dict(payload["imnet_encoder"])
    state.optimizer.load_state_dict(payload["optimizer"])
    if state.discriminator is not None:
        state.discriminator.load_state_dict(payload["discriminator"])
        state.discriminator_optimizer.load_state_dict(payload["discriminator_optimizer"])
    if state.style_hallucination is not None:
        state.style_hallucination.load_state_dict(payload["style_hallucination"])
    state.iteration = payload["iteration"]
    rng = payload["rng"]
    torch.set_rng_state(rng["torch"])
    if rng["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    state.generator.set_state(rng["generator"])
    state.classmix_rng.bit_generator.state = rng["classmix"]
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])


def load_trained_model(checkpoint: str | Path, which: str = "model") -> torch.nn.Module:
    """The student (`"model"`) or the EMA teacher (`"teacher"`) of a training checkpoint, eval."""
    payload = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"{checkpoint} is not a training checkpoint of hrda_lib.train; for an "
            "official one use hrda_lib.load_official_checkpoint"
        )
    model = build_segmentor(payload["config"].model)
    model.load_state_dict(payload[which])
    return model.eval()


# -- the loop --------------------------------------------------------------------------------------


def _channels_last(x):
    return (
        x.contiguous(memory_format=torch.channels_last) if torch.is_tensor(x) and x.ndim == 4 else x
    )


def _flush(pending: list[dict], checkpoint: Path) -> list[dict]:
    """Convert the pending rows' loss tensors to floats (one host sync) and check them."""
    rows = [{k: float(v) if torch.is_tensor(v) else v for k, v in row.items()} for row in pending]
    for row in rows:
        if not all(np.isfinite(v) for k, v in row.items() if k.startswith(("loss", "pseudo"))):
            raise NonFiniteLossError(
                f"non-finite loss at iteration {row['iteration'] - 1}: {row}; the last good "
                f"checkpoint {checkpoint} is intact"
            )
    return rows


def _tensorboard_writer(work_dir: Path):
    """A TensorBoard writer into `work_dir/tb` if tensorboard is installed, else None."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(work_dir / "tb"))


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def with_iters(cfg: ExperimentConfig, iters: int) -> ExperimentConfig:
    """`cfg` with a schedule of `iters` iterations (intervals clipped to it)."""
    return replace(
        cfg,
        iters=iters,
        optimizer=replace(cfg.optimizer, max_iters=iters),
        eval_interval=min(cfg.eval_interval, iters),
        checkpoint_interval=min(cfg.checkpoint_interval, iters),
    )


def train(
    cfg: ExperimentConfig,
    work_dir: str | Path,
    iters: int | None = None,
    stop_at: int | None = None,
    resume: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train (or resume) an experiment into `work_dir`: `latest.pth`, `metrics.csv`, config.

    Args:
        cfg: the experiment.
        work_dir: output folder; a finished run there is returned as is when `resume`.
        iters: schedule length override.
        stop_at: end cleanly with a checkpoint after this iteration (cluster time limits).
        resume: continue from `work_dir/latest.pth` if present.
        progress: show a progress bar with the loss and throughput.
    """
    import cv2

    from hrda_lib.data_setup import build_train_loader, build_val_dataset, style_images
    from hrda_lib.evaluate import evaluate

    cv2.setNumThreads(0)  # OpenCV threads in the training process would contend with workers
    cfg = with_iters(cfg, iters) if iters else cfg
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = work_dir / "latest.pth"
    metrics_path = work_dir / "metrics.csv"
    start_time = time.perf_counter()
    _seed_everything(cfg.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    state = build_state(cfg, device)
    rows: list[dict] = []
    if resume and checkpoint.is_file():
        load_checkpoint(state, checkpoint)
        if metrics_path.is_file():
            rows = (
                pd.read_csv(metrics_path)
                .query(f"iteration <= {state.iteration}")
                .to_dict("records")
            )
    elif checkpoint.exists():
        raise FileExistsError(
            f"{checkpoint} exists: pass resume=True (--resume) or another work dir"
        )
    (work_dir / "config.json").write_text(json.dumps(asdict(cfg), indent=2, default=str))
    if state.iteration >= cfg.iters:
        return TrainResult(work_dir, checkpoint, pd.DataFrame(rows), 0.0)

    loader = build_train_loader(cfg, start=state.iteration * cfg.batch_size)
    val_dataset = build_val_dataset(cfg)
    if cfg.eval_max_images is not None:
        val_dataset = Subset(val_dataset, range(min(cfg.eval_max_images, len(val_dataset))))
    end = min(cfg.iters, stop_at) if stop_at is not None else cfg.iters
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=end, initial=state.iteration, desc=cfg.name, dynamic_ncols=True)
    batches = iter(loader)
    writer = _tensorboard_writer(work_dir)
    pending: list[dict] = []  # rows whose losses are still device tensors (no sync yet)
    tic = time.perf_counter()
    while state.iteration < end:
        if state.style_hallucination is not None and shade.needs_refresh(
            state.iteration, cfg.uda.shade.refresh_interval
        ):
            refresh_style_prototypes(state, cfg, style_images(cfg))
        batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in next(batches).items()}
        if cfg.channels_last:
            batch = {k: _channels_last(v) for k, v in batch.items()}
        logs = train_step(state, batch, cfg)
        now = time.perf_counter()
        pending.append(
            {
                "iteration": state.iteration,
                **logs,
                "seconds_per_iter": now - tic,
                "lr": state.optimizer.param_groups[0]["lr"],
            }
        )
        tic = now
        evaluate_now = state.iteration % cfg.eval_interval == 0 or state.iteration == cfg.iters
        checkpoint_now = state.iteration % cfg.checkpoint_interval == 0 or state.iteration in (
            end,
            cfg.iters,
        )
        if evaluate_now or checkpoint_now or state.iteration % cfg.log_interval == 0:
            flushed = _flush(pending, checkpoint)  # host sync; raises on a non-finite loss
            rows += flushed
            pending = []
            if writer is not None:
                for row in flushed:
                    for key, value in row.items():
                        if key != "iteration":
                            writer.add_scalar(key, value, row["iteration"])
            if bar is not None:
                bar.update(state.iteration - bar.n)
                bar.set_postfix(
                    loss=f"{rows[-1]['loss_source_total']:.3f}",
                    s_it=f"{rows[-1]['seconds_per_iter']:.2f}",
                )
        if evaluate_now:
            result = evaluate(
                state.model, val_dataset, cfg.test_window, cfg.test_stride, cfg.max_batch
            )
            rows[-1] |= {"val_miou": result.summary["mIoU"], "val_aacc": result.summary["aAcc"]}
            state.model.train()
            tic = time.perf_counter()
        if checkpoint_now:
            save_checkpoint(state, cfg, checkpoint)
            tmp = metrics_path.with_suffix(".csv.tmp")
            pd.DataFrame(rows).to_csv(tmp, index=False)
            tmp.replace(metrics_path)
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()
    return TrainResult(work_dir, checkpoint, pd.DataFrame(rows), time.perf_counter() - start_time)


def main(argv: list[str] | None = None) -> None:
    from hrda_lib.presets import get_preset, list_presets

    parser = argparse.ArgumentParser(description="Train HRDA (UDA) from a preset.")
    parser.add_argument("preset", nargs="?", help="preset name (see --list)")
    parser.add_argument("--list", action="store_true", help="print the presets, one per line")
    parser.add_argument("--iters", type=int, help="schedule length")
    parser.add_argument("--work-dir", help="output folder (default work_dirs/<preset>)")
    parser.add_argument("--stop-at", type=int, help="stop with a checkpoint after iteration N")
    parser.add_argument("--resume", action="store_true", help="continue from work-dir/latest.pth")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="FIELD=VALUE",
        help="override config fields, e.g. model.attention=fixed seed=1",
    )
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(list_presets()))
        return
    if not args.preset:
        parser.error("a preset name is required (see --list)")
    cfg = apply_overrides(get_preset(args.preset), args.set)
    work_dir = args.work_dir or f"work_dirs/{cfg.name}"
    try:
        result = train(cfg, work_dir, args.iters, args.stop_at, args.resume)
    except (NonFiniteLossError, FileExistsError) as error:
        sys.exit(f"error: {error}")
    last = result.metrics.dropna(subset=["val_miou"]) if "val_miou" in result.metrics else None
    summary = (
        f"; val mIoU {last['val_miou'].iloc[-1]:.2f}" if last is not None and len(last) else ""
    )
    print(f"done: {result.checkpoint} ({result.wall_time_s:.0f} s){summary}")


if __name__ == "__main__":
    main()
