"""Each shared block against an independent functional restatement of what it must compute."""

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from encdec.blocks import BasicBlock, Bottleneck, ConvBNAct, DecoderBlock, DoubleConv, ResidualMLPBlock


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "running_var" in name
                        else torch.randn(t.shape, generator=g) * 0.2)
    return module.eval()


def conv_bn(x, conv: nn.Conv2d, bn: nn.BatchNorm2d, relu: bool):
    y = F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding)
    y = F.batch_norm(y, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps)
    return F.relu(y) if relu else y


def test_conv_bn_act_indices_and_output():
    block = randomize(ConvBNAct(3, 4, 3, bias=False, affine=False))
    assert sorted(block.state_dict()) == ["0.weight", "1.num_batches_tracked", "1.running_mean", "1.running_var"]
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(block(x), conv_bn(x, block[0], block[1], True))


@pytest.mark.parametrize("bias,affine", [(True, True), (False, False)])
def test_double_conv_matches_two_conv_bn_relu(bias, affine):
    block = randomize(DoubleConv(3, 6, bias=bias, affine=affine))
    assert isinstance(block[0], nn.Conv2d) and isinstance(block[3], nn.Conv2d)
    assert (block[0].bias is not None) == bias and block[1].affine == affine
    x = torch.randn(2, 3, 10, 10)
    expected = conv_bn(conv_bn(x, block[0], block[1], True), block[3], block[4], True)
    torch.testing.assert_close(block(x), expected)


def _copy_torchvision_block(ours: nn.Module, theirs: nn.Module) -> None:
    """Copy a torchvision block's weights into ours by position (conv/bn order is the same)."""
    ours_t = [t for t in ours.state_dict().values()]
    theirs_t = [t for t in theirs.state_dict().values()]
    assert len(ours_t) == len(theirs_t)
    with torch.no_grad():
        for a, b in zip(ours_t, theirs_t):
            a.copy_(b)


@pytest.mark.parametrize("stride,cin,cout", [(1, 16, 16), (2, 16, 32)])
def test_basic_block_torchvision_kind_equals_torchvision(stride, cin, cout):
    down = None
    if stride != 1 or cin != cout:
        down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
    theirs = randomize(torchvision.models.resnet.BasicBlock(cin, cout, stride, down), 1)
    ours = BasicBlock(cin, cout, stride).eval()
    _copy_torchvision_block(ours, theirs)
    x = torch.randn(2, cin, 8, 8)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("stride,cin", [(1, 64), (2, 32)])
def test_bottleneck_torchvision_kind_equals_torchvision(stride, cin):
    down = None
    if stride != 1 or cin != 64:
        down = nn.Sequential(nn.Conv2d(cin, 64, 1, stride, bias=False), nn.BatchNorm2d(64))
    theirs = randomize(torchvision.models.resnet.Bottleneck(cin, 16, stride, down), 2)
    ours = Bottleneck(cin, 16, 64, stride).eval()
    _copy_torchvision_block(ours, theirs)
    x = torch.randn(2, cin, 8, 8)
    torch.testing.assert_close(ours(x), theirs(x))


def test_basic_block_course_kind():
    block = randomize(BasicBlock(8, 16, 2, kind="course"), 3)
    assert block.conv1[0].bias is not None and block.shortcut[0].bias is not None
    x = torch.randn(2, 8, 8, 8)
    main = conv_bn(conv_bn(x, block.conv1[0], block.conv1[1], True), block.conv2[0], block.conv2[1], True)
    short = conv_bn(x, block.shortcut[0], block.shortcut[1], False)
    torch.testing.assert_close(block(x), F.relu(main + short))


@pytest.mark.parametrize("kind", ["course_cifar", "course_voc", "course_voc_narrow"])
@pytest.mark.parametrize("stride", [1, 2])
def test_course_bottlenecks(kind, stride):
    block = randomize(Bottleneck(16, 8, 16, stride, kind=kind), 4)
    # The reference's always-true identity test: a projection even though in == out and stride == 1.
    assert block.shortcut is not None
    x = torch.randn(2, 16, 8, 8)
    relu_inside = kind == "course_cifar"
    y = conv_bn(x, block.conv1[0], block.conv1[1], relu_inside)
    assert block.conv1[0].stride == (stride, stride)  # stride on the first 1x1 in both course kinds
    y = conv_bn(y, block.conv2[0], block.conv2[1], relu_inside)
    y = conv_bn(y, block.conv3[0], block.conv3[1], relu_inside)
    s = conv_bn(x, block.shortcut[0], block.shortcut[1], relu_inside)
    expected = y + s if kind == "course_cifar" else F.relu(y + s)
    torch.testing.assert_close(block(x), expected)


@pytest.mark.parametrize("kind, stride, inner", [
    # the VOC listing's non-downsampling block: conv1x1(in, out), conv3x3(out, out), conv1x1(out, out)
    ("course_voc", 1, 24), ("course_voc", 2, 8),
    ("course_voc_narrow", 1, 8), ("course_voc_narrow", 2, 8), ("course_cifar", 1, 8), ("torchvision", 1, 8),
])
def test_bottleneck_inner_width(kind, stride, inner):
    block = Bottleneck(16, 8, 24, stride, kind=kind)
    assert block.conv1[0].weight.shape == (inner, 16, 1, 1)
    assert block.conv2[0].weight.shape == (inner, inner, 3, 3)
    assert block.conv3[0].weight.shape == (24, inner, 1, 1)


def test_course_cifar_output_can_be_negative_only_without_final_relu():
    block = randomize(Bottleneck(8, 4, 8, kind="course_cifar"), 5)
    # Every branch ends in ReLU and there is no ReLU after the sum: the output is still >= 0.
    assert block(torch.randn(2, 8, 6, 6)).min() >= 0
    voc = randomize(Bottleneck(8, 4, 8, kind="course_voc"), 5)
    assert voc(torch.randn(2, 8, 6, 6)).min() >= 0


def test_bad_kind_is_a_clear_error():
    with pytest.raises(ValueError, match="course_voc"):
        Bottleneck(8, 4, 8, kind="voc")
    with pytest.raises(ValueError, match="course"):
        BasicBlock(8, 8, kind="fast")
    with pytest.raises(ValueError, match="transposed"):
        DecoderBlock(8, 8, 8, upsample="cubic")


def test_decoder_block_bilinear_concat_order():
    block = randomize(DecoderBlock(4, 2, 3, upsample="bilinear"), 6)
    x, skip = torch.randn(1, 4, 4, 4), torch.randn(1, 2, 8, 8)
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    torch.testing.assert_close(block(x, skip), block.conv(torch.cat([up, skip], 1)))
    first = randomize(DecoderBlock(4, 4, 3, skip_first=True), 6)
    skip4 = torch.randn(1, 4, 8, 8)
    torch.testing.assert_close(first(x, skip4), first.conv(torch.cat([skip4, up], 1)))
    assert not torch.allclose(first(x, skip4), first.conv(torch.cat([up, skip4], 1)))


def test_decoder_block_pads_to_odd_skip():
    block = randomize(DecoderBlock(4, 2, 3, skip_first=True, pad_to_skip=True, bias=False, affine=False), 7)
    x, skip = torch.randn(1, 4, 4, 5), torch.randn(1, 2, 9, 11)
    up = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)  # 8 x 10
    padded = F.pad(up, [0, 1, 0, 1])  # dx = 1 -> left 0, right 1; dy = 1 -> top 0, bottom 1
    torch.testing.assert_close(block(x, skip), block.conv(torch.cat([skip, padded], 1)))


def test_decoder_block_transposed_and_no_skip():
    block = randomize(DecoderBlock(8, 4, 4, upsample="transposed", up_channels=6), 8)
    assert block.up.in_channels == 8 and block.up.out_channels == 6 and block.conv[0].in_channels == 10
    x, skip = torch.randn(1, 8, 3, 3), torch.randn(1, 4, 6, 6)
    up = F.conv_transpose2d(x, block.up.weight, block.up.bias, stride=2)
    torch.testing.assert_close(block(x, skip), block.conv(torch.cat([up, skip], 1)))
    lone = randomize(DecoderBlock(8, 0, 4, upsample="nearest"), 9)
    torch.testing.assert_close(lone(x), lone.conv(F.interpolate(x, scale_factor=2, mode="nearest")))


def test_residual_mlp_block():
    block = randomize(ResidualMLPBlock(16), 10)
    x = torch.randn(5, 16)

    def bn(y, m):
        return (y - m.running_mean) / torch.sqrt(m.running_var + m.eps) * m.weight + m.bias

    main = bn(F.relu(bn(x @ block.fc1.weight.T + block.fc1.bias, block.bn1)) @ block.fc2.weight.T + block.fc2.bias,
              block.bn2)
    # AvgPool1d(3, 2, 1) with zero padding counted: mean of (x[2i-1], x[2i], x[2i+1]).
    padded = F.pad(x, (1, 1))
    short = torch.stack([padded[:, 2 * i:2 * i + 3].mean(1) for i in range(8)], 1)
    torch.testing.assert_close(block(x), F.relu(main + short))
    with pytest.raises(ValueError, match="even"):
        ResidualMLPBlock(7)
