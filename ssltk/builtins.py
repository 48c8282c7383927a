"""The engine's own components, registered through the same hooks as any plugin (entry point ``builtins``)."""
from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def ssltk_register_backbones(register):
    from .backbones import AlexNet, Conv4, ResNet8, ResNet32, ResNet34, ResNet56, TimmBackbone

    register("conv4", Conv4)
    register("resnet8", ResNet8)
    register("resnet32", ResNet32)
    register("resnet56", ResNet56)
    register("resnet34", ResNet34)
    register("alexnet", AlexNet)
    register.prefix("timm", TimmBackbone, "model_name")


@hookimpl
def ssltk_register_datasets(register):
    from .data.datasets import Cifar10, Digits, ImageFolder

    register("digits", Digits)
    register("cifar10", Cifar10)
    register("imagefolder", ImageFolder)


@hookimpl
def ssltk_register_heads(register):
    from .heads import MLPHead, RelationHead

    register("mlp", MLPHead)
    register("relation", RelationHead)


@hookimpl
def ssltk_register_evaluators(register):
    from .eval.linear import LinearEval

    register("linear", LinearEval)
