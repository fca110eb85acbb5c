"""The head's depthwise dilated convolution as shifted multiply-adds equals `F.conv2d`."""

import pytest
import torch
import torch.nn.functional as F

from hrda_lib import depthwise
from hrda_lib.heads import DAFormerHead


@pytest.mark.parametrize(
    "shape, dilation",
    [
        ((2, 8, 32, 32), 6),  # the synthetic profile's maps
        ((5, 4, 32, 20), 12),  # an odd batch (chunks of 2 and 1), a wide map
        ((3, 4, 16, 16), 18),  # off-centre taps that only see padding
        ((1, 3, 7, 9), 1),
    ],
)
def test_shifted_depthwise_equals_conv2d_with_gradients(shape, dilation) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=gen, requires_grad=True)
    weight = torch.randn(shape[1], 1, 3, 3, generator=gen, requires_grad=True)
    grad = torch.randn(*shape, generator=gen)
    reference = F.conv2d(x, weight, padding=dilation, dilation=dilation, groups=shape[1])
    ref_x, ref_w = torch.autograd.grad(reference, (x, weight), grad)
    out = depthwise.depthwise_conv3x3(x, weight, dilation)
    got_x, got_w = torch.autograd.grad(out, (x, weight), grad)
    assert torch.allclose(out, reference, atol=1e-5)
    assert torch.allclose(got_x, ref_x, atol=1e-5)
    assert torch.allclose(got_w, ref_w, rtol=1e-5, atol=1e-4)


def test_the_head_uses_it_on_cpu_and_keeps_its_outputs(monkeypatch) -> None:
    """The DAFormer head's ASPP takes the shifted path on a CPU and gives the same logits and
    weight gradients as with PyTorch's convolution."""
    head = DAFormerHead([8, 8, 8, 8], num_classes=5, embed_dim=8, dropout=0.0).train()
    gen = torch.Generator().manual_seed(1)
    features = [torch.randn(2, 8, 32 // 2**i, 32 // 2**i, generator=gen) for i in range(4)]
    calls = []
    shifted = depthwise.depthwise_conv3x3
    monkeypatch.setattr(
        depthwise, "depthwise_conv3x3", lambda *a: calls.append(a[2]) or shifted(*a)
    )
    out = head(features)
    grads = torch.autograd.grad(out.square().sum(), list(head.parameters()))
    assert calls == [6, 12, 18]
    monkeypatch.setattr(depthwise, "applies", lambda conv, x: False)
    reference = head(features)
    reference_grads = torch.autograd.grad(reference.square().sum(), list(head.parameters()))
    assert torch.allclose(out, reference, atol=1e-5)
    for got, want in zip(grads, reference_grads, strict=True):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-5)


def test_it_applies_only_to_bias_free_depthwise_3x3_on_cpu_float32() -> None:
    x = torch.zeros(1, 4, 8, 8)
    depthwise_conv = torch.nn.Conv2d(4, 4, 3, padding=6, dilation=6, groups=4, bias=False)
    assert depthwise.applies(depthwise_conv, x)
    assert not depthwise.applies(depthwise_conv, x.double())
    assert not depthwise.applies(torch.nn.Conv2d(4, 4, 3, padding=1, groups=4), x)  # bias
    assert not depthwise.applies(torch.nn.Conv2d(4, 4, 3, padding=1, bias=False), x)  # dense
    assert not depthwise.applies(
        torch.nn.Conv2d(4, 4, 3, padding=2, dilation=6, groups=4, bias=False), x
    )


def test_glibc_keeps_freed_memory_where_there_is_glibc() -> None:
    import platform

    from hrda_lib import allocator

    on_glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert allocator.keep_freed_memory() == on_glibc
