"""Model registry, shapes, conditioning, init and spectral norm."""

import pytest
import torch

from fashiongan.errors import FashionGANError
from fashiongan.models import CONDITIONINGS, MODELS, build_discriminator, build_generator
from fashiongan.models.dcgan import minibatch_std
from fashiongan.models.layers import conv_transpose_as_fold, conv_transpose_by_phases


@pytest.mark.parametrize("model", ["dcgan28", "dcgan64"])
@pytest.mark.parametrize("cond", CONDITIONINGS)
def test_shapes_and_range(model, cond):
    torch.manual_seed(0)
    G = build_generator(model, 16, 10, cond, 0.25, 8)
    D = build_discriminator(model, 10, cond, 0.25, "batch", spectral_norm=False)
    res = MODELS.get(model).resolution
    z, y = torch.randn(5, 16), torch.tensor([0, 1, 2, 8, 9])
    x = G(z, y)
    assert x.shape == (5, 1, res, res) and x.dtype == torch.float32
    assert x.min() >= -1 and x.max() <= 1
    out = D(x, y)
    assert out.shape == (5,)


@pytest.mark.parametrize("cond", ["concat", "projection"])
def test_conditioning_changes_outputs(cond):
    torch.manual_seed(0)
    G = build_generator("dcgan28", 16, 10, cond, 0.25, 8).eval()
    D = build_discriminator("dcgan28", 10, cond, 0.25, "none", False)
    if cond == "projection":  # CBN starts as plain BN; give it class-specific affine terms
        with torch.no_grad():
            for m in G.modules():
                if hasattr(m, "scale"):
                    m.scale.weight.normal_(1, 0.5)
    z = torch.randn(1, 16).repeat(2, 1)
    y = torch.tensor([3, 7])
    x = G(z, y)
    assert not torch.allclose(x[0], x[1])
    assert not torch.allclose(D(x[:1].repeat(2, 1, 1, 1), y)[0], D(x[:1].repeat(2, 1, 1, 1), y)[1])


def test_minibatch_std_is_the_spread_within_each_group():
    torch.manual_seed(0)
    h = torch.randn(8, 3, 2, 2)
    h[4:] = h[4]  # the second group of four holds one sample four times
    for x in (h, h.contiguous(memory_format=torch.channels_last)):
        out = minibatch_std(x, 4)
        want = h[:4].std(dim=0, unbiased=False).mean()
        assert out.shape == (8,)
        assert torch.allclose(out[:4], want.expand(4), atol=1e-6)
        assert torch.allclose(out[4:], torch.full((4,), 1e-4))  # sqrt of the 1e-8 floor
    h2 = h.clone()
    h2[0] += 1.0  # a change in group one leaves group two alone
    assert torch.equal(minibatch_std(h2, 4)[4:], out[4:])
    assert minibatch_std(h[:6], 4).unique().numel() == 2  # 6 = two groups of three


def test_discriminator_with_minibatch_std_sees_a_collapsed_batch():
    torch.manual_seed(0)
    D = build_discriminator("dcgan28", 10, "projection", 0.25, "none", False, True, mbstd=4)
    x, y = torch.randn(8, 1, 28, 28), torch.zeros(8, dtype=torch.long)

    def spread_free(x, y):  # D's outputs with the spread's weights at zero
        with torch.no_grad():
            weight = D.mbstd_fc.weight.clone()
            D.mbstd_fc.weight.zero_()
            out = D(x, y, classes=True)
            D.mbstd_fc.weight.copy_(weight)
        return out

    with torch.no_grad():
        D.mbstd_fc.weight.fill_(1.0)
    varied, varied_cls = D(x, y, classes=True)
    collapsed = D(x[:1].repeat(8, 1, 1, 1), y)
    single = D(x[:1], y[:1])  # a batch of one: its own group, spread 0, as when collapsed
    assert torch.allclose(collapsed, single.expand(8), atol=1e-5)
    base, base_cls = spread_free(x, y)
    # the spread adds the same amount to the logit and to every class logit of a group
    shift = varied - base
    assert (shift > 1e-3).all() and torch.allclose(shift[:4], shift[0].expand(4))
    assert torch.allclose(varied_cls - base_cls, shift[:, None].expand(8, 10), atol=1e-5)


@pytest.mark.parametrize("shape", [(3, 32, 14, 14), (2, 5, 3, 7), (2, 4, 1, 1)])
@pytest.mark.parametrize("out_ch", [1, 3])
def test_transposed_conv_rewrites_equal_the_layer(shape, out_ch):
    torch.manual_seed(0)
    convt = torch.nn.ConvTranspose2d(shape[1], out_ch, 4, 2, 1)
    h = torch.randn(shape)
    with torch.no_grad():
        want = convt(h)
        for x in (h, h.contiguous(memory_format=torch.channels_last)):
            assert torch.allclose(conv_transpose_as_fold(x, convt), want, atol=1e-5)
            assert torch.allclose(conv_transpose_by_phases(x, convt), want, atol=1e-5)


@pytest.mark.parametrize("model", ["dcgan28", "dcgan64"])
@pytest.mark.parametrize("cond", CONDITIONINGS)
@pytest.mark.parametrize("width", [0.25, 1.0])  # below and at 64 maps before the last layer
def test_sampling_path_equals_the_autograd_path(model, cond, width):
    """Without autograd G works in place and takes the phase form of its last layer on CPU;
    it must draw the same images as the path training takes (eval mode, with autograd)."""
    torch.manual_seed(0)
    G = build_generator(model, 16, 10, cond, width, 8)
    G(torch.randn(8, 16), torch.arange(8))  # running statistics that are not 0/1
    G.eval()
    z, y = torch.randn(6, 16), torch.tensor([0, 1, 2, 3, 8, 9])
    want = G(z, y)
    for g in (G, G.to(memory_format=torch.channels_last)):
        with torch.no_grad():
            got = g(z, y)
        assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()


def test_soft_labels_equal_hard_labels_for_one_hot():
    torch.manual_seed(0)
    for cond in ("concat", "projection"):
        G = build_generator("dcgan28", 16, 10, cond, 0.25, 8).eval()
        z, y = torch.randn(3, 16), torch.tensor([1, 4, 9])
        assert torch.allclose(G(z, y), G(z, torch.eye(10)[y]), atol=1e-6)


def test_unconditional_ignores_labels():
    torch.manual_seed(0)
    G = build_generator("dcgan28", 16, 10, "none", 0.25, 8).eval()
    z = torch.randn(2, 16)
    assert torch.equal(G(z, torch.tensor([0, 1])), G(z, None))


def test_dcgan_init_and_param_counts():
    torch.manual_seed(0)
    G = build_generator("dcgan64", 100, 10, "none", 1.0, 8)
    assert abs(G.fc.weight.std().item() - 0.02) < 0.002
    assert G.fc.weight.shape[0] == 512 * 4 * 4  # 512 maps at 4×4, as in DCGAN
    assert [m.out_channels for m in G.ups] == [256, 128, 64]
    D = build_discriminator("dcgan64", 10, "none", 1.0, "batch", False)
    assert [c.out_channels for c in D.convs] == [64, 128, 256, 512]
    assert isinstance(D.norms[0], torch.nn.Identity) and isinstance(
        D.norms[1], torch.nn.BatchNorm2d
    )


def test_spectral_norm_bounds_layers():
    torch.manual_seed(0)
    D = build_discriminator("dcgan28", 10, "projection", 0.25, "none", spectral_norm=True)
    D.train()
    x, y = torch.randn(8, 1, 28, 28), torch.randint(10, (8,))
    for _ in range(30):  # power iterations converge
        D(x, y)
    w = D.fc.weight
    assert torch.linalg.matrix_norm(w, ord=2).item() == pytest.approx(1.0, rel=0.05)
    assert any("parametrizations" in name for name, _ in D.named_parameters())


def test_unknown_names():
    with pytest.raises(
        FashionGANError, match="unknown model 'dcgan48'; choose one of: dcgan28, dcgan64, dcgan32"
    ):
        build_generator("dcgan48", 16, 10, "none", 1.0, 8)
    with pytest.raises(FashionGANError, match="unknown conditioning"):
        build_generator("dcgan28", 16, 10, "acgan", 1.0, 8)
    with pytest.raises(FashionGANError, match="--d-norm"):
        build_discriminator("dcgan28", 10, "none", 1.0, "layer", False)
