"""The engine's own components, registered through the same hooks as any plugin (entry point ``builtins``)."""
from __future__ import annotations

from .hookspecs import hookimpl


@hookimpl
def ssltk_register_backbones(register):
    from .backbones import AlexNet, Conv4, ResNet8, ResNet18Cifar, ResNet32, ResNet34, ResNet56, TimmBackbone

    register("conv4", Conv4)
    register("resnet8", ResNet8)
    register("resnet32", ResNet32)
    register("resnet56", ResNet56)
    register("resnet18-cifar", ResNet18Cifar)
    register("resnet34", ResNet34)
    register("alexnet", AlexNet)
    register.prefix("timm", TimmBackbone, "model_name")


@hookimpl
def ssltk_register_datasets(register):
    from .data.datasets import (STL10, SVHN, Cifar10, Cifar10Imbalanced, Cifar100, Cifar100Coarse, Digits,
                                ImageFolder, SlimageNet, TinyImageNet)
    from .data.sources import FileList, WebDataset

    register("digits", Digits)
    register("cifar10", Cifar10)
    register("cifar100", Cifar100)
    register("cifar100-20", Cifar100Coarse)
    register("cifar10-imbalanced", Cifar10Imbalanced)
    register("svhn", SVHN)
    register("stl10", STL10)
    register("tiny-imagenet", TinyImageNet)
    register("slimagenet", SlimageNet)
    register("imagefolder", ImageFolder)
    register("filelist", FileList)
    register("webdataset", WebDataset)


@hookimpl
def ssltk_register_heads(register):
    from .heads import MLPHead, RelationHead

    register("mlp", MLPHead)
    register("relation", RelationHead)


@hookimpl
def ssltk_register_evaluators(register):
    from .eval.clustering import ClusteringEval
    from .eval.finetune import FinetuneEval
    from .eval.knn import KNNEval
    from .eval.linear import LinearEval
    from .eval.retrieval import RetrievalEval
    from .eval.tsne import TSNEEval

    register("linear", LinearEval)
    register("knn", KNNEval)
    register("finetune", FinetuneEval)
    register("retrieval", RetrievalEval)
    register("tsne", TSNEEval)
    register("clustering", ClusteringEval)


@hookimpl
def ssltk_register_augmentations(register):
    from .data.recipes import AffineCutoutAugment, ContrastiveAugment, CropFlipAugment, PerImageContrastive

    # SeLa's and RotationNet's recipes are registered by their plugins (sela, baselines)
    register("contrastive", ContrastiveAugment)
    register("crop-flip", CropFlipAugment)
    register("affine-cutout", AffineCutoutAugment)
    register("per-image-contrastive", PerImageContrastive)


@hookimpl
def ssltk_register_loggers(register):
    from .loggers import CSVLogger, TensorBoardLogger, WandbLogger

    register("csv", CSVLogger)
    register("tensorboard", TensorBoardLogger)
    register("wandb", WandbLogger)
