"""timm-style model tests over the variants: shapes, finite outputs, a gradient for every parameter,
and the fusion identities of the scale attention."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from hrda_lib.config import ModelConfig
from hrda_lib.inference import attention_of_predicted_class, slide_inference
from hrda_lib.model import HRDASegmentor, build_segmentor, segmentation_loss

SMALL = ModelConfig(encoder="mit_b0", detail_crop_size=(32, 32))
VARIANTS = {
    "hrda": SMALL,
    "single_attention": replace(SMALL, attention="single"),
    "fixed_attention": replace(SMALL, attention="fixed"),
    "blur_detail": replace(SMALL, blur_detail=True),
    "same_scale": replace(SMALL, context_scale=1.0, context_loss_weight=0.1),
    "context_0.75": replace(SMALL, context_scale=0.75),
    "context_0.25": replace(SMALL, context_scale=0.25, detail_crop_size=(64, 64)),
    "no_detail_loss": replace(SMALL, detail_loss_weight=0.0),
    "daformer": replace(SMALL, multi_resolution=False),
    "deeplabv2_hrda": ModelConfig(encoder="resnet101_v1c", head="dlv2", detail_crop_size=(64, 64)),
    "deeplabv2": ModelConfig(encoder="resnet101_v1c", head="dlv2", multi_resolution=False),
}


def _batch(height: int = 64, width: int = 64):
    gen = torch.Generator().manual_seed(0)
    image = torch.randn(2, 3, height, width, generator=gen)
    label = torch.randint(0, 19, (2, height, width), generator=gen)
    label[:, :4] = 255
    return image, label


@pytest.mark.parametrize("name", list(VARIANTS))
def test_train_forward_shapes_finite_and_gradients(name: str) -> None:
    cfg = VARIANTS[name]
    torch.manual_seed(0)  # drop path may drop a block for the whole batch; keep the draw fixed
    model = build_segmentor(cfg).train()
    if cfg.head == "dlv2":  # timm (like mmseg) zero-inits each block's last BN: the residual
        # branches get no gradient before ImageNet weights are loaded; give them what those have
        for name, param in model.named_parameters():
            if name.endswith("bn3.weight"):
                torch.nn.init.ones_(param)
    # MiT needs >= 32 px at its input; ResNet's output stride 8 wants 128 px
    size = 128 if cfg.context_scale < 0.5 or cfg.head == "dlv2" else 64
    os = model.output_stride
    assert os == (8 if cfg.head == "dlv2" else 4)
    image, label = _batch(size, size)
    out = model.forward_train(image, torch.Generator().manual_seed(1))
    assert out.fused.shape == (2, 19, size // os, size // os)
    if isinstance(model, HRDASegmentor):
        lr_size = round(size * cfg.context_scale / os)
        assert out.context_logits.shape == (2, 19, lr_size, lr_size)
        assert out.detail_logits.shape == (
            2,
            19,
            cfg.detail_crop_size[0] // os,
            cfg.detail_crop_size[1] // os,
        )
        if cfg.attention != "fixed":
            assert out.attention.shape[1] == (19 if cfg.attention == "classwise" else 1)
    losses = segmentation_loss(out, label, cfg)
    assert all(torch.isfinite(v) for v in losses.values())
    losses["total"].backward()
    no_grad = [
        n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0
    ]
    assert no_grad == []


def test_loss_weights_follow_config() -> None:
    model = build_segmentor(SMALL).eval()
    image, label = _batch()
    with torch.no_grad():
        out = model.forward_multires(image, (16, 48, 0, 32))
    losses = segmentation_loss(out, label, SMALL)
    assert set(losses) == {"fused", "detail", "total"}
    assert torch.allclose(losses["total"], losses["fused"] + losses["detail"])
    lr_cfg = replace(SMALL, context_loss_weight=0.2)
    assert set(segmentation_loss(out, label, lr_cfg)) == {"fused", "detail", "context", "total"}
    ratio = segmentation_loss(out, label, lr_cfg)["fused"] / losses["fused"]
    assert torch.isclose(ratio, torch.tensor(0.7 / 0.9))


def test_fusion_identities() -> None:
    image, _ = _batch()
    whole = (0, 64, 0, 64)
    ones = replace(SMALL, attention="fixed", fixed_attention=1.0, detail_crop_size=(64, 64))
    model = build_segmentor(ones).eval()
    with torch.no_grad():
        out = model.forward_multires(image, whole)
    # Attention 1 and the detail box covering the context: the fused output is the detail logits.
    assert torch.allclose(out.fused, out.detail_logits, atol=1e-6)
    zeros = replace(ones, fixed_attention=0.0)
    model = build_segmentor(zeros).eval()
    with torch.no_grad():
        out = model.forward_multires(image, (16, 48, 16, 48))
    up = torch.nn.functional.interpolate(out.context_logits, scale_factor=2, mode="bilinear")
    assert torch.allclose(out.fused, up, atol=1e-6)


def test_attention_is_zero_outside_the_detail_box() -> None:
    model = build_segmentor(SMALL).eval()
    image, _ = _batch()
    box = (16, 48, 8, 40)
    with torch.no_grad():
        out = model.forward_multires(image, box)
    up = torch.nn.functional.interpolate(out.context_logits, scale_factor=2, mode="bilinear")
    outside = torch.ones(16, 16, dtype=torch.bool)
    outside[box[0] // 4 - 1 : box[1] // 4 + 1, box[2] // 4 - 1 : box[3] // 4 + 1] = False
    assert torch.allclose(out.fused[..., outside], up[..., outside], atol=1e-6)
    assert not torch.allclose(out.fused[..., ~outside], up[..., ~outside], atol=1e-3)


def test_inference_modes_and_bounded_batches() -> None:
    model = build_segmentor(SMALL).eval()
    image, _ = _batch(64, 96)
    full = slide_inference(model, image, 64, 32)
    assert full.shape == (2, 19, 64, 96) and torch.isfinite(full).all()
    assert torch.allclose(slide_inference(model, image, 64, 32, max_batch=3), full, atol=1e-5)
    lr_only = model.forward_slide(image, attention_override=0.0)
    hr_only = model.forward_slide(image, attention_override=1.0)
    up = torch.nn.functional.interpolate(lr_only.context_logits, scale_factor=2, mode="bilinear")
    assert torch.allclose(lr_only.fused, up, atol=1e-6)
    assert torch.allclose(hr_only.fused, hr_only.detail_logits, atol=1e-6)
    out = model.forward_slide(image)
    attention = torch.nn.functional.interpolate(out.attention, scale_factor=2, mode="bilinear")
    prediction = out.fused.argmax(1)
    att = attention_of_predicted_class(attention, prediction)
    assert att.shape == (2, 16, 24) and (att >= 0).all() and (att <= 1).all()
    # The attention of the predicted class is that class's channel.
    k = int(prediction[1, 5, 7])
    assert att[1, 5, 7] == attention[1, k, 5, 7]


def test_single_scale_segmentor_inference() -> None:
    model = build_segmentor(replace(SMALL, multi_resolution=False)).eval()
    image, _ = _batch(64, 96)
    assert slide_inference(model, image, 64, 32).shape == (2, 19, 64, 96)


def test_drop_path_is_passed_to_timm() -> None:
    model = build_segmentor(SMALL)
    rates = [m.drop_prob for m in model.encoder.modules() if type(m).__name__ == "DropPath"]
    assert max(rates) == pytest.approx(0.1)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError):
        ModelConfig(attention="softmax")
    with pytest.raises(ValueError):
        ModelConfig(detail_loss_weight=0.6, context_loss_weight=0.6)
