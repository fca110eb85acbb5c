"""Pretrain a MiT encoder on the neutral classification set: the ImageNet stand-in of the
synthetic benchmark, written in SegFormer's `mit_b*.pth` layout.

    python -m hrda_lib.pretrain                       # pretrained/synthetic_mit_b0.pth (~30 min)
    python -m hrda_lib.pretrain --check               # is the committed file current?
    python -m hrda_lib.pretrain --set fractal         # pretrained/fractal_mit_b0.pth instead

ImageNet pretraining as SegFormer does it, scaled to a CPU: the encoder with a classifier on its
globally pooled last stage (`head.*`, which `load_imagenet_encoder` drops as it drops
ImageNet's), AdamW with a linear warm-up and a cosine decay, label smoothing 0.1, random resized
crops and flips. The set is `hrda_lib.synthetic.pretraining` (neither source nor target), or
with `--set fractal` the formula-driven alternative `hrda_lib.synthetic.fractals`. The
weights are stored as float16 (loaded back as float32) with a manifest beside them (the command,
seed, set and training configs, set version, SHA-256 and held-out accuracy), so a run can tell
whether they are current; `load_imagenet_encoder` and the feature distance read them exactly
like `pretrained/mit_b5.pth` on real data. Training is resumable (`<out>.work/latest.pt`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from hrda_lib import allocator
from hrda_lib.cli import UsageError, run
from hrda_lib.encoders import MiTEncoder
from hrda_lib.files import atomic_write_bytes
from hrda_lib.paths import REPO_ROOT, data_root
from hrda_lib.synthetic.fractals import FractalSetConfig, build_fractal_set
from hrda_lib.synthetic.pretraining import PretrainingSetConfig, build_set
from hrda_lib.transforms import IMG_MEAN, IMG_STD

DEFAULT_WEIGHTS = REPO_ROOT / "pretrained" / "synthetic_mit_b0.pth"
DEFAULT_SET = PretrainingSetConfig()
SetConfig = PretrainingSetConfig | FractalSetConfig
SETS: dict[str, tuple[SetConfig, Path]] = {  # --set: the set and where its weights go
    "neutral": (DEFAULT_SET, DEFAULT_WEIGHTS),
    "fractal": (FractalSetConfig(), REPO_ROOT / "pretrained" / "fractal_mit_b0.pth"),
}


@dataclass(frozen=True)
class PretrainConfig:
    """How the stand-in is trained (SegFormer's ImageNet recipe, shortened for a CPU)."""

    encoder: str = "mit_b0"
    iters: int = 4000  # optimizer steps
    batch_size: int = 128
    lr: float = 1e-3  # AdamW, linear warm-up then cosine to 0
    warmup_iters: int = 200
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    drop_path_rate: float = 0.1  # as in the downstream MiT
    min_crop_area: float = 0.5  # random resized crop: area share in [this, 1]
    holdout: float = 0.05  # share of the set held out for the reported accuracy
    checkpoint_interval: int = 250


def hash_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def manifest_path(weights: Path) -> Path:
    return Path(weights).with_suffix(".json")


def expected_manifest(set_config: SetConfig, config: PretrainConfig, seed: int) -> dict:
    """What a current manifest records about how the weights were made (hash aside)."""
    return {"set": set_config.manifest(), "training": asdict(config), "seed": seed}


def staleness(
    weights: Path = DEFAULT_WEIGHTS,
    set_config: SetConfig = DEFAULT_SET,
    config: PretrainConfig = PretrainConfig(),
    seed: int = 0,
) -> str | None:
    """Why the weights must be rebuilt (a short reason), or None if they are current."""
    weights, record_path = Path(weights), manifest_path(weights)
    if not weights.is_file() or not record_path.is_file():
        return f"{weights} or its manifest is missing"
    record = json.loads(record_path.read_text())
    for key, value in expected_manifest(set_config, config, seed).items():
        if json.loads(json.dumps(record.get(key))) != json.loads(json.dumps(value)):
            return f"the {key} configuration changed since {weights.name} was made"
    if record.get("sha256") != hash_file(weights):
        return f"{weights.name} does not match the hash in its manifest"
    return None


class Classifier(nn.Module):
    """MiT encoder + LayerNorm + linear classifier on the pooled last stage (`head`)."""

    def __init__(self, encoder: str, drop_path_rate: float, num_classes: int) -> None:
        super().__init__()
        self.encoder = MiTEncoder(encoder, drop_path_rate)
        channels = self.encoder.channels[-1]
        self.head = nn.Sequential(nn.LayerNorm(channels), nn.Linear(channels, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (B, 3, h, w) normalized -> (B, classes) logits."""
        return self.head(self.encoder(x)[-1].mean(dim=(2, 3)))  # pooled (B, C_4)


def to_segformer_keys(model: Classifier) -> dict[str, torch.Tensor]:
    """The encoder (and classifier) in SegFormer's `mit_b*.pth` naming, the inverse of
    `encoders.convert_mit_keys`: `stages.{s}.blocks.{j}` -> `block{s+1}.{j}`, ..."""
    out = {}
    for key, value in model.encoder.mit.state_dict().items():
        key = (
            key.replace("patch_embed.", "patch_embed1.") if key.startswith("patch_embed.") else key
        )
        key = re.sub(r"^stages\.(\d)\.downsample\.", lambda m: f"patch_embed{int(m[1]) + 1}.", key)
        key = re.sub(r"^stages\.(\d)\.blocks\.", lambda m: f"block{int(m[1]) + 1}.", key)
        key = re.sub(r"^stages\.(\d)\.norm\.", lambda m: f"norm{int(m[1]) + 1}.", key)
        key = key.replace("mlp.dwconv.", "mlp.dwconv.dwconv.")
        out[key] = value
    out["head.weight"], out["head.bias"] = model.head[1].weight, model.head[1].bias
    return out


def _augment(images: torch.Tensor, config: PretrainConfig, generator: torch.Generator):
    """Random resized crop (area share in [min_crop_area, 1], aspect 3/4..4/3) and horizontal
    flip per sample, back to the input size; uint8 (B, H, W, 3) -> normalized (B, 3, H, W)."""
    batch, height, width, _ = images.shape
    x = images.permute(0, 3, 1, 2).float()
    u = torch.rand(batch, 5, generator=generator)
    area = config.min_crop_area + (1 - config.min_crop_area) * u[:, 0]
    aspect = torch.exp((u[:, 1] - 0.5) * 2 * math.log(4 / 3))
    scale_w = torch.sqrt(area * aspect).clamp(max=1)
    scale_h = torch.sqrt(area / aspect).clamp(max=1)
    shift_x = (1 - scale_w) * (2 * u[:, 2] - 1)
    shift_y = (1 - scale_h) * (2 * u[:, 3] - 1)
    flip = torch.where(u[:, 4] < 0.5, -1.0, 1.0)
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = scale_w * flip, shift_x
    theta[:, 1, 1], theta[:, 1, 2] = scale_h, shift_y
    grid = F.affine_grid(theta, (batch, 3, height, width), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    mean = torch.tensor(IMG_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMG_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (x - mean) / std


def _normalize(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMG_MEAN, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(IMG_STD, dtype=torch.float32).view(1, 3, 1, 1)
    return (images.permute(0, 3, 1, 2).float() - mean) / std


def _lr(iteration: int, config: PretrainConfig) -> float:
    if iteration < config.warmup_iters:
        return config.lr * (iteration + 1) / config.warmup_iters
    progress = (iteration - config.warmup_iters) / max(config.iters - config.warmup_iters, 1)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


@torch.no_grad()
def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray, batch: int = 256) -> float:
    """Top-1 accuracy (%) on a held-out part of the set (no augmentation)."""
    model.eval()
    correct = 0
    for i in range(0, len(images), batch):
        logits = model(_normalize(torch.from_numpy(images[i : i + batch])))
        correct += int((logits.argmax(1) == torch.from_numpy(labels[i : i + batch])).sum())
    model.train()
    return 100.0 * correct / max(len(images), 1)


def load_set(set_config: SetConfig, seed: int, progress: bool = True):
    """The neutral (or fractal) set, cached under `<data root>/pretraining/` by its
    configuration."""
    key = hashlib.sha256(json.dumps([set_config.manifest(), seed]).encode()).hexdigest()[:12]
    kind = set_config.manifest().get("kind", "neutral")
    cache = data_root() / "pretraining" / f"{kind}_s{seed}_{key}.npz"
    if cache.is_file():
        with np.load(cache) as stored:
            return stored["images"], stored["labels"]
    builder = build_fractal_set if isinstance(set_config, FractalSetConfig) else build_set
    images, labels = builder(set_config, seed, progress)
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, images=images, labels=labels)
    tmp.replace(cache)
    return images, labels


def pretrain(
    out: Path = DEFAULT_WEIGHTS,
    set_config: SetConfig = DEFAULT_SET,
    config: PretrainConfig = PretrainConfig(),
    seed: int = 0,
    command: str = "python -m hrda_lib.pretrain",
    progress: bool = True,
    stop_at: int | None = None,
) -> dict | None:
    """Train the stand-in and write `out` (SegFormer layout, fp16) and its manifest; resumes
    from `<out>.work/latest.pt`. Returns the manifest (None when `stop_at` ended it early,
    with a checkpoint to resume from)."""
    out = Path(out)
    allocator.keep_freed_memory()  # a CPU run's speed; the weights are the same
    work = out.with_suffix(".work")
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    images, labels = load_set(set_config, seed, progress)
    order = np.random.default_rng(seed).permutation(len(labels))
    n_holdout = int(config.holdout * len(labels))
    held, train_idx = order[:n_holdout], order[n_holdout:]

    torch.manual_seed(seed)
    model = Classifier(config.encoder, config.drop_path_rate, set_config.num_classes)
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "norm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "norm" not in n)]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.lr,
    )
    generator = torch.Generator().manual_seed(seed)
    iteration, log = 0, []
    checkpoint = work / "latest.pt"
    if checkpoint.is_file():
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)  # plain values
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        torch.set_rng_state(state["torch"])
        iteration, log = state["iteration"], state["log"]
    per_epoch = len(train_idx) // config.batch_size
    end = min(stop_at or config.iters, config.iters)
    bar = tqdm(total=config.iters, initial=iteration, desc="pretraining", disable=not progress)
    model.train()
    while iteration < end:
        epoch, step = divmod(iteration, per_epoch)
        perm = np.random.default_rng([seed, epoch]).permutation(train_idx)
        batch = perm[step * config.batch_size : (step + 1) * config.batch_size]
        x = _augment(torch.from_numpy(images[batch]), config, generator)
        y = torch.from_numpy(labels[batch])
        for group in optimizer.param_groups:
            group["lr"] = _lr(iteration, config)
        loss = F.cross_entropy(model(x), y, label_smoothing=config.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        iteration += 1
        log.append(loss.item())
        bar.update(1)
        bar.set_postfix(loss=f"{np.mean(log[-50:]):.3f}")
        if iteration % config.checkpoint_interval == 0 or iteration in (end, config.iters):
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "torch": torch.get_rng_state(),
                "iteration": iteration,
                "log": log,
            }
            torch.save(state, work / "latest.pt.tmp")
            (work / "latest.pt.tmp").replace(checkpoint)
    bar.close()
    if iteration < config.iters:
        return None
    held_accuracy = accuracy(model, images[held], labels[held])
    weights = {k: v.detach().half() for k, v in to_segformer_keys(model).items()}
    tmp = out.with_suffix(".pth.tmp")
    torch.save(weights, tmp)
    tmp.replace(out)
    manifest = {
        "command": command,
        **expected_manifest(set_config, config, seed),
        "sha256": hash_file(out),
        "heldout_accuracy": round(held_accuracy, 2),
        "chance_accuracy": round(100 / set_config.num_classes, 2),
        "samples": int(len(labels)),
        "final_loss": round(float(np.mean(log[-100:])), 4),
        "loss_curve": [round(float(np.mean(log[i : i + 100])), 4) for i in range(0, len(log), 100)],
        "seconds": round(time.perf_counter() - start, 1),
        "threads": torch.get_num_threads(),
    }
    atomic_write_bytes(manifest_path(out), json.dumps(manifest, indent=2).encode())
    return manifest


SMOKE_SET = PretrainingSetConfig(n_scenes=6, per_scene=4)
SMOKE_FRACTALS = FractalSetConfig(n_categories=4, per_category=6)
SMOKE_TRAINING = PretrainConfig(iters=4, batch_size=8, warmup_iters=2, checkpoint_interval=2)


def current_weights(
    rebuild: bool = False, smoke_folder: Path | None = None, set_name: str = "neutral"
) -> Path:
    """The stand-in's weights (or, with `set_name="fractal"`, the fractal alternative's),
    rebuilt first when asked or when the code that makes them changed (`staleness`); with
    `smoke_folder` (tests), a tiny build there instead, never the committed file."""
    set_config, weights = SETS[set_name]
    if smoke_folder is not None:
        neutral = set_name == "neutral"
        out = Path(smoke_folder) / ("stand_in_smoke.pth" if neutral else f"{set_name}_smoke.pth")
        tiny = SMOKE_SET if neutral else SMOKE_FRACTALS
        pretrain(out, tiny, SMOKE_TRAINING, command="smoke", progress=False)
        return out
    reason = "asked" if rebuild else staleness(weights, set_config)
    if reason:
        print(f"rebuilding {weights} ({reason}): about 35-50 min on 2 CPU cores")
        pretrain(weights, set_config, command=_command(set_name))
    return weights


def _command(set_name: str, seed: int = 0) -> str:
    """The command line that makes a set's weights (recorded in their manifest)."""
    return (
        "python -m hrda_lib.pretrain"
        + (f" --set {set_name}" if set_name != "neutral" else "")
        + (f" --seed {seed}" if seed else "")
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--set", choices=sorted(SETS), default="neutral", dest="set_name")
    parser.add_argument("--out", type=Path, help="default: pretrained/<set>_mit_b0.pth")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--iters", type=int, default=PretrainConfig.iters)
    parser.add_argument(
        "--scenes", type=int, help=f"neutral set: scenes drawn (default {DEFAULT_SET.n_scenes})"
    )
    parser.add_argument("--check", action="store_true", help="only say whether --out is current")
    args = parser.parse_args(argv)
    set_config, default_out = SETS[args.set_name]
    if args.scenes is not None:
        if args.set_name != "neutral":
            raise UsageError("--scenes sizes the neutral set; the fractal set has no scenes")
        set_config = PretrainingSetConfig(n_scenes=args.scenes)
    out = args.out or default_out
    config = PretrainConfig(iters=args.iters)
    reason = staleness(out, set_config, config, args.seed)
    if args.check:
        print(f"{out}: " + (reason or "current"))
        raise SystemExit(1 if reason else 0)
    manifest = pretrain(out, set_config, config, args.seed, _command(args.set_name, args.seed))
    print(
        f"wrote {out}: held-out accuracy {manifest['heldout_accuracy']:.1f} % "
        f"({manifest['seconds']:.0f} s)"
    )


if __name__ == "__main__":
    run(main)
