"""Run a trained (or official) HRDA model on your own images: a file, or a folder searched
recursively.

For every image: the colour-coded prediction, an overlay on the image, and (HRDA) the scale
attention of the predicted class (how much the prediction leans on the detail branch), as PNGs
under `--out`, named after the input's relative path and file name (`a/b.jpg` ->
`a/b.jpg_pred.png`), so that no two inputs collide.

    python -m hrda_lib.predict work_dirs/synthetic_hrda/latest.pth my_images/ --out predictions/
    python -m hrda_lib.predict released_hrda.pth photo.jpg --out predictions/

Any image PIL reads works: any size (padded to what the model needs and cropped back), grayscale,
RGBA (the alpha is dropped), EXIF-rotated JPEGs. Images are first resized (keep-ratio) to the scale
the checkpoint was trained at, as its test pipeline does (`--scale LONG SHORT` for another,
`--native` for none); predictions are written at the original size. A file that cannot be read is
reported and skipped; the exit status is the number of such files.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from hrda_lib.checkpoints import checkpoint_config, load_model
from hrda_lib.cli import UsageError, positive_int, run, window
from hrda_lib.conversion import png_bytes
from hrda_lib.experiments import PAPER
from hrda_lib.files import atomic_write_bytes
from hrda_lib.inference import attention_of_predicted_class, slide_branches, slide_inference
from hrda_lib.model import HRDASegmentor
from hrda_lib.presets import build_row
from hrda_lib.transforms import normalize, rescale_size, resize_image
from hrda_lib.viz import colorize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass(frozen=True)
class TestSetting:
    """How a checkpoint's test pipeline sees an image."""

    scale: tuple[int, int] | None  # keep-ratio (long, short) bound; None: native size
    window: tuple[int, int]  # outer sliding window, at that scale
    stride: tuple[int, int]


def test_setting(checkpoint: Path, model: torch.nn.Module) -> TestSetting:
    """The test pipeline of the checkpoint's experiment; for an official file, the paper's (HRDA:
    2048x1024, slide 1024 / 512; DAFormer: 1024x512, one window)."""
    cfg = checkpoint_config(checkpoint)
    if cfg is None:
        cfg = build_row(PAPER, "hrda" if model.cfg.multi_resolution else "daformer_lr")
        if not model.cfg.multi_resolution:
            whole = cfg.data.test_pipeline.scale[::-1]
            return TestSetting(cfg.data.test_pipeline.scale, whole, whole)
    return TestSetting(cfg.data.test_pipeline.scale, cfg.test_window, cfg.test_stride)


def input_multiple(model: torch.nn.Module) -> int:
    """Image sides must be multiples of this: 32 px (MiT's coarsest stage) at every scale the
    model sees its input (the context at `context_scale` for HRDA)."""
    scale = model.cfg.context_scale if model.cfg.multi_resolution else 1.0
    multiple = 32
    while abs(multiple * scale - round(multiple * scale / 32) * 32) > 1e-6:
        multiple += 32
    return multiple


def read_rgb(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 RGB: EXIF orientation applied, alpha and palettes
    dropped, grayscale expanded. Raises OSError (PIL's errors included) if unreadable."""
    try:
        with Image.open(path) as image:
            image = ImageOps.exif_transpose(image)
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, ValueError, SyntaxError) as error:
        raise OSError(f"{path}: not an image PIL can read ({error})") from None


@torch.no_grad()
def predict_image(
    model: torch.nn.Module,
    image: np.ndarray,
    setting: TestSetting,
    max_batch: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Prediction (H, W) uint8 train ids and, for HRDA, the attention of the predicted class
    (H, W) in [0, 1], at the image's own size.

    The image is resized to `setting.scale`, padded (edge pixels repeated) to at least the
    window and to `input_multiple(model)`, predicted with the sliding window, and the logits
    are cropped back and resized to the original size.

    Args:
        image: (H, W, 3) uint8 RGB.
    """
    height, width = image.shape[:2]
    if setting.scale is not None:
        image = resize_image(image, rescale_size(height, width, setting.scale))
    h, w = image.shape[:2]
    multiple = input_multiple(model)
    padded_h = -(-max(h, setting.window[0]) // multiple) * multiple
    padded_w = -(-max(w, setting.window[1]) // multiple) * multiple
    device = next(model.parameters()).device
    x = torch.from_numpy(normalize(image))[None].to(device)  # (1, 3, h, w)
    x = F.pad(x, (0, padded_w - w, 0, padded_h - h), mode="replicate")
    window = (min(setting.window[0], padded_h), min(setting.window[1], padded_w))
    attention = None
    if isinstance(model, HRDASegmentor):
        parts = slide_branches(model, x, window, setting.stride, max_batch)
        logits, attention = parts["fused"], parts["attention"]
    else:
        logits = slide_inference(model, x, window, setting.stride, max_batch)

    def back(t: torch.Tensor) -> torch.Tensor:  # crop the padding, resize to the original
        return F.interpolate(
            t[..., :h, :w], size=(height, width), mode="bilinear", align_corners=False
        )

    pred = back(logits).argmax(1)  # (1, H, W)
    if attention is not None:
        attention = attention_of_predicted_class(back(attention), pred)[0].clamp(0, 1)
        attention = attention.cpu().numpy()
    return pred[0].to(torch.uint8).cpu().numpy(), attention


def save_outputs(image: np.ndarray, pred: np.ndarray, attention, out: Path, name: str) -> None:
    """`<name>_pred.png`, `<name>_overlay.png` and, for HRDA, `<name>_attention.png` in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    colour = colorize(pred)
    atomic_write_bytes(out / f"{name}_pred.png", png_bytes(colour))
    overlay = (0.5 * image.astype(np.float32) + 0.5 * colour.astype(np.float32)).astype(np.uint8)
    atomic_write_bytes(out / f"{name}_overlay.png", png_bytes(overlay))
    if attention is not None:
        heat = matplotlib.colormaps["viridis"](attention)[..., :3]  # (H, W, 3) in [0, 1]
        atomic_write_bytes(out / f"{name}_attention.png", png_bytes((heat * 255).astype(np.uint8)))


OUTPUT_SUFFIXES = ("_pred.png", "_overlay.png", "_attention.png")  # what `save_outputs` writes


def find_images(source: Path, out: Path | None = None) -> list[Path]:
    """One image, or every image under a folder (recursive, sorted), leaving out what this
    command writes when `out` lies in that folder (its own outputs are never read back as
    inputs, however often it runs there)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise UsageError(f"{source}: no such file or folder (give an image or a folder of them)")
    paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if out is not None and out.resolve().is_relative_to(source.resolve()):
        ours = out.resolve()
        paths = [
            p
            for p in paths
            if not (p.resolve().is_relative_to(ours) and p.name.endswith(OUTPUT_SUFFIXES))
        ]
    if not paths:
        raise UsageError(f"{source}: no images ({', '.join(IMAGE_SUFFIXES)}) found under it")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Predict your own images with HRDA.")
    parser.add_argument("checkpoint", type=Path, help="our training checkpoint or an official one")
    parser.add_argument("images", type=Path, help="an image, or a folder of images")
    parser.add_argument("--out", type=Path, required=True, help="folder for the outputs")
    parser.add_argument("--window", type=window, nargs="+", help="outer window (default: config)")
    parser.add_argument("--stride", type=window, nargs="+", help="outer stride (default: half)")
    parser.add_argument(
        "--scale",
        type=positive_int,
        nargs=2,
        metavar=("LONG", "SHORT"),
        help="resize to fit these bounds (default: the checkpoint's test scale)",
    )
    parser.add_argument("--native", action="store_true", help="no resize: the image's own size")
    parser.add_argument("--max-batch", type=positive_int, help="images per encoder call")
    args = parser.parse_args(argv)
    for flag, given in (("--window", args.window), ("--stride", args.stride)):
        if given and len(given) > 2:
            raise UsageError(f"{flag} takes one size (square) or two (H W), not {len(given)}")
    paths = find_images(args.images, args.out)
    model = load_model(args.checkpoint)
    if torch.cuda.is_available():
        model.cuda()
    setting = test_setting(args.checkpoint, model)
    scale = None if args.native else tuple(args.scale) if args.scale else setting.scale
    win = (
        tuple(args.window * 2 if len(args.window) == 1 else args.window)
        if args.window
        else setting.window
    )
    stride = args.stride or ([w // 2 for w in win] if args.window else list(setting.stride))
    stride = tuple(stride * 2 if len(stride) == 1 else stride)
    setting = TestSetting(scale, win, stride)
    base = args.images if args.images.is_dir() else args.images.parent
    failed = []
    for path in tqdm(paths, desc="predict", unit="image"):
        try:
            image = read_rgb(path)
        except OSError as error:
            failed.append(path)
            tqdm.write(f"skipped: {error}")
            continue
        pred, attention = predict_image(model, image, setting, args.max_batch)
        relative = path.relative_to(base)
        save_outputs(image, pred, attention, args.out / relative.parent, relative.name)
    print(
        f"wrote {len(paths) - len(failed)} prediction sets to {args.out}"
        + (f"; {len(failed)} unreadable files skipped" if failed else "")
    )
    if failed:
        sys.exit(min(len(failed), 125))


if __name__ == "__main__":
    run(main)
