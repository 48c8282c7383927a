"""Built-in backbones: Conv-4, CIFAR ResNets, ResNet-34, AlexNet and any timm model (``timm:NAME``)."""
from .alexnet import AlexNet
from .conv4 import Conv4
from .resnet_cifar import ResNet8, ResNet18Cifar, ResNet32, ResNet56, ResNetCifar
from .timm_adapter import ResNet34, TimmBackbone

__all__ = ["AlexNet", "Conv4", "ResNet8", "ResNet18Cifar", "ResNet32", "ResNet56", "ResNetCifar", "ResNet34", "TimmBackbone"]
