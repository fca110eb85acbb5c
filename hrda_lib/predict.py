"""Run a trained (or official) HRDA model on a folder of your own images.

For every image: the colour-coded prediction, an overlay on the image, and the scale attention of
the predicted class (how much the prediction leans on the detail branch), as PNGs.

    python -m hrda_lib.predict work_dirs/synthetic_hrda/latest.pth my_images/ --out predictions/
    python -m hrda_lib.predict released_hrda.pth my_images/ --window 1024 --stride 512

Images are used at their own resolution unless `--scale W H` resizes them (keep-ratio, as the
test pipeline does); predictions are written at the original size.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from hrda_lib.checkpoints import checkpoint_config, load_model
from hrda_lib.inference import attention_of_predicted_class, predict_logits
from hrda_lib.model import HRDASegmentor
from hrda_lib.transforms import normalize, rescale_size, resize_image
from hrda_lib.viz import colorize

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@torch.no_grad()
def predict_image(
    model: torch.nn.Module,
    image: np.ndarray,
    window: tuple[int, int],
    stride: tuple[int, int],
    scale: tuple[int, int] | None = None,
    max_batch: int | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Prediction (H, W) uint8 train ids and, for HRDA, the attention map (H, W) in [0, 1].

    Args:
        image: (H, W, 3) uint8 RGB.
        window, stride: the outer sliding window at the (rescaled) image size.
        scale: optional keep-ratio (long, short) bound of the test pipeline.
    """
    height, width = image.shape[:2]
    if scale is not None:
        image = resize_image(image, rescale_size(height, width, scale))
    device = next(model.parameters()).device
    x = torch.from_numpy(normalize(image))[None].to(device)  # (1, 3, h, w)
    logits = predict_logits(model, x, window, stride, (height, width), max_batch)
    pred = logits.argmax(1)  # (1, H, W)
    attention = None
    if isinstance(model, HRDASegmentor):  # attention of the whole image, context at once
        out = model.forward_slide(x, max_batch=max_batch)
        att = out.attention
        if torch.is_tensor(att):
            att = F.interpolate(att, size=(height, width), mode="bilinear", align_corners=False)
        attention = attention_of_predicted_class(att, pred)[0].clamp(0, 1).cpu().numpy()
    return pred[0].to(torch.uint8).cpu().numpy(), attention


def save_outputs(image: np.ndarray, pred: np.ndarray, attention, out: Path, stem: str) -> None:
    """`<stem>_pred.png`, `<stem>_overlay.png` and, for HRDA, `<stem>_attention.png`."""
    out.mkdir(parents=True, exist_ok=True)
    colour = colorize(pred)
    Image.fromarray(colour).save(out / f"{stem}_pred.png")
    overlay = (0.5 * image.astype(np.float32) + 0.5 * colour.astype(np.float32)).astype(np.uint8)
    Image.fromarray(overlay).save(out / f"{stem}_overlay.png")
    if attention is not None:
        heat = matplotlib.colormaps["viridis"](attention)[..., :3]  # (H, W, 3) in [0, 1]
        Image.fromarray((heat * 255).astype(np.uint8)).save(out / f"{stem}_attention.png")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Predict a folder of images with HRDA.")
    parser.add_argument("checkpoint", help="our training checkpoint or an official one")
    parser.add_argument("images", type=Path, help="a folder of images (or one image)")
    parser.add_argument("--out", type=Path, default=Path("predictions"))
    parser.add_argument("--window", type=int, nargs="+", help="outer window (default: config)")
    parser.add_argument("--stride", type=int, nargs="+", help="outer stride (default: config)")
    parser.add_argument("--scale", type=int, nargs=2, metavar=("LONG", "SHORT"))
    parser.add_argument("--max-batch", type=int, help="bound images per encoder call (memory)")
    args = parser.parse_args(argv)
    if args.images.is_file():
        paths = [args.images]
    elif args.images.is_dir():
        paths = sorted(p for p in args.images.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        parser.error(f"{args.images}: no such file or folder")
    if not paths:
        parser.error(f"{args.images}: no images ({', '.join(IMAGE_SUFFIXES)}) found")
    model = load_model(args.checkpoint)
    if torch.cuda.is_available():
        model.cuda()
    payload_cfg = checkpoint_config(args.checkpoint)
    default = getattr(payload_cfg, "test_window", (1024, 1024))
    window = tuple(
        args.window * 2 if args.window and len(args.window) == 1 else args.window or default
    )
    stride = args.stride or [w // 2 for w in window]
    stride = tuple(stride * 2 if len(stride) == 1 else stride)
    for path in paths:
        image = np.asarray(Image.open(path).convert("RGB"))
        pred, attention = predict_image(model, image, window, stride, args.scale, args.max_batch)
        save_outputs(image, pred, attention, args.out, path.stem)
        print(f"{path} -> {args.out / path.stem}_pred.png")


if __name__ == "__main__":
    main()
