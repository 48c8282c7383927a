import pytest

from ssltk.errors import SsltkError, UnknownNameError
from ssltk.registry import Registry


class Base:
    pass


def make():
    reg = Registry("widget", Base)

    @reg.register("resnet8")
    class A(Base):
        def __init__(self, width=1):
            self.width = width

    @reg.register("resnet32", width=3)
    class B(Base):
        def __init__(self, width=1):
            self.width = width

    reg.register("resnet56", B)
    reg.register("conv4", A)
    reg.register_prefix("timm", A, "width")
    return reg, A, B


def test_register_get_create():
    reg, A, B = make()
    assert reg.get("resnet8") is A
    assert reg.create("resnet32").width == 3  # registered defaults apply
    assert reg.create("resnet32", width=5).width == 5
    assert reg.create("timm:7").width == "7"


def test_list_wildcards_and_natural_sort():
    reg, *_ = make()
    assert reg.list("resnet*") == ["resnet8", "resnet32", "resnet56"]
    assert reg.list() == ["conv4", "resnet8", "resnet32", "resnet56", "timm:*"]
    assert reg.list("nothing*") == []


def test_unknown_name_suggests_close_matches():
    reg, *_ = make()
    with pytest.raises(UnknownNameError) as info:
        reg.get("resnet33")
    assert "unknown widget 'resnet33'" in str(info.value)
    assert "'resnet32'" in str(info.value)
    with pytest.raises(UnknownNameError) as info:
        reg.get("zzzzzz")
    assert "available:" in str(info.value)


def test_duplicate_and_wrong_type_are_rejected():
    reg, A, B = make()
    with pytest.raises(SsltkError):
        reg.register("resnet8", B)
    reg.register("resnet8", B, override=True)
    assert reg.get("resnet8") is B

    class NotAWidget:
        pass

    with pytest.raises(TypeError):
        reg.register("bad", NotAWidget)
