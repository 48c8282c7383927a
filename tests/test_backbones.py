import pytest
import torch

import ssltk
from ssltk.errors import SsltkError

COUNT = lambda m: sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name,features", [("conv4", 64), ("resnet8", 64), ("resnet32", 64), ("resnet56", 64),
                                           ("resnet34", 512), ("resnet18-cifar", 512)])
def test_shapes(name, features):
    m = ssltk.create_backbone(name).eval()
    x = torch.randn(2, 3, 32, 32)
    assert m.num_features == features
    assert m(x).shape == (2, features)
    assert m.forward_features(x).dim() == 4


def test_parameter_counts_match_the_papers():
    assert abs(COUNT(ssltk.create_backbone("resnet32")) - 0.47e6) < 0.01e6  # paper 000 A.2: ~0.47M
    assert abs(COUNT(ssltk.create_backbone("resnet34")) - 21.3e6) < 0.1e6  # ~21.3M without the classifier
    assert COUNT(ssltk.create_backbone("conv4")) < COUNT(ssltk.create_backbone("resnet8"))
    # the CIFAR ResNet-18 of lightly's and solo-learn's benchmarks: 11.17M (torchvision's, less its fc: 11.18M)
    assert abs(COUNT(ssltk.create_backbone("resnet18-cifar")) - 11.17e6) < 0.01e6


def test_conv4_layout():
    m = ssltk.create_backbone("conv4")
    convs = [mod for mod in m.modules() if isinstance(mod, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [8, 16, 32, 64]
    assert all(c.bias is None and c.kernel_size == (3, 3) for c in convs)


def test_alexnet_upsamples_small_inputs():
    m = ssltk.create_backbone("alexnet").eval()
    assert m.num_features == 4096
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 4096)


def test_timm_family():
    m = ssltk.create_backbone("timm:resnet18")
    assert m.num_features == 512
    assert m(torch.randn(2, 3, 32, 32)).shape == (2, 512)
    with pytest.raises(SsltkError, match="unknown timm model"):
        ssltk.create_backbone("timm:resnet_does_not_exist")


def test_alexnet_is_selas_big_layout_by_default():
    from torch import nn

    big = ssltk.create_backbone("alexnet")
    convs = [m.out_channels for m in big.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [96, 256, 384, 384, 256]  # the authors' models/alexnet.py, size='big'
    assert not any(isinstance(m, nn.BatchNorm1d) for m in big.classifier)
    assert sum(isinstance(m, nn.Dropout) for m in big.classifier) == 2
    lin = big.classifier[1]
    assert abs(lin.weight.std().item() - 0.01) < 0.001 and lin.bias.abs().max() == 0
    small = ssltk.create_backbone("alexnet", size="small")
    assert [m.out_channels for m in small.modules() if isinstance(m, nn.Conv2d)] == [64, 192, 384, 256, 256]
