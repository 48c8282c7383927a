"""A JPEG's quality and chroma subsampling read from its headers, as a reproduction record names them."""
import io

import numpy as np
import pytest
from PIL import Image

from ssltk.data.jpeg_encoding import chroma_subsampling, describe_jpeg, jpeg_quality
from ssltk.reproduce.keep import _image_format

_IMAGE = Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8))


def _jpeg(image=_IMAGE, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, "JPEG", **options)
    return buf.getvalue()


@pytest.mark.parametrize("quality", [5, 49, 50, 75, 99, 100])
@pytest.mark.parametrize("subsampling,name", [(0, "4:4:4"), (1, "4:2:2"), (2, "4:2:0")])
def test_quality_and_subsampling_are_the_ones_libjpeg_was_given(quality, subsampling, name):
    data = _jpeg(quality=quality, subsampling=subsampling)
    assert jpeg_quality(data) == quality
    assert chroma_subsampling(data) == name


def test_tables_of_another_encoder_and_non_jpegs_are_named_as_such():
    table = list(range(1, 65))  # a table no libjpeg quality writes
    data = _jpeg(qtables=[table, table])
    assert jpeg_quality(data) is None
    assert describe_jpeg(data).startswith("JPEG quantisation tables not libjpeg's")
    assert describe_jpeg(_jpeg(_IMAGE.convert("L"), quality=80)) == "JPEG quality 80, greyscale"
    assert describe_jpeg(b"\x89PNG\r\n\x1a\n") == "JPEG (headers unreadable)"


def test_a_record_names_the_folder_images_encoding(tmp_path):
    (tmp_path / "train" / "cat").mkdir(parents=True)
    (tmp_path / "train" / "cat" / "0.jpg").write_bytes(_jpeg(quality=75, subsampling=2))
    assert _image_format(str(tmp_path)) == "JPEG quality 75, 4:2:0 chroma"
    (tmp_path / "train" / "cat" / "0.jpg").unlink()
    _IMAGE.save(tmp_path / "train" / "cat" / "0.png")
    assert _image_format(str(tmp_path)) == "PNG"
    assert _image_format(None) == "the dataset's own files"
