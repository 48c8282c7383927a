"""Small files that declare huge images, and YAML that expands without bound, are refused before they take the
machine's memory (the hardening issue, second round, item 2)."""
import io
import struct
import time
import zlib

import pytest
import torch
from PIL import Image

import ssltk
from ssltk.data.headers import MAX_PIXELS, ImageTooLarge, check_pixels, declared_size
from ssltk.errors import SsltkError
from ssltk.yaml_io import load_yaml


def _jpeg_declaring(height: int, width: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf, "JPEG")
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _png_declaring(height: int, width: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + \
        bytes(1500)


def test_headers_give_the_declared_size_without_decoding():
    assert declared_size(_jpeg_declaring(65000, 65000)) == (65000, 65000)
    assert declared_size(_png_declaring(40000, 30000)) == (40000, 30000)
    buf = io.BytesIO()
    Image.new("RGB", (21, 13)).save(buf, "BMP")
    assert declared_size(buf.getvalue()) == (13, 21)  # other formats: PIL's lazy open reads the header only
    check_pixels(_jpeg_declaring(10000, 10000))  # 100 MP, a real photograph's size, passes
    with pytest.raises(ImageTooLarge, match="declares 65000 x 65000 pixels.*--data.max_pixels"):
        check_pixels(_jpeg_declaring(65000, 65000))
    with pytest.raises(ImageTooLarge):
        check_pixels(_jpeg_declaring(100, 100), max_pixels=99 * 100)


@pytest.mark.parametrize("stream", [False, True])
def test_an_image_folder_refuses_or_skips_a_bomb_naming_the_file(tmp_path, stream):
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(4):
            Image.new("RGB", (20, 20), (i * 40, 0, 0)).save(tmp_path / cls / f"{i}.png")
    (tmp_path / "a" / "bomb.jpg").write_bytes(_jpeg_declaring(65000, 65000))
    (tmp_path / "b" / "bomb.png").write_bytes(_png_declaring(40000, 40000))
    data = {"root": str(tmp_path), "size": 16, "stream": stream, "workers": 0}
    kw = dict(trainer={"epochs": 1, "batch_size": 4, "progress": False}, evaluate={"linear": False})
    with pytest.raises(SsltkError, match=r"bomb\.(jpg|png).*declares") as info:
        ssltk.fit("relational", data="imagefolder", data_args=data, objective_args={"k": 2},
                  **{**kw, "trainer": {**kw["trainer"], "run_dir": str(tmp_path / "r1")}})
    assert "\n" not in str(info.value)
    ssltk.fit("relational", data="imagefolder", data_args={**data, "skip_corrupt": True}, objective_args={"k": 2},
              **{**kw, "trainer": {**kw["trainer"], "run_dir": str(tmp_path / "r2")}})
    with pytest.raises(SsltkError, match="max_pixels must be a positive"):
        ssltk.fit("relational", data="imagefolder", data_args={**data, "max_pixels": 0}, **kw)


def test_a_yaml_alias_bomb_is_refused_within_a_second(tmp_path):
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    lines.append("objective: relational")
    bomb = "\n".join(lines)
    t0 = time.perf_counter()
    with pytest.raises(SsltkError, match="aliases expand to more than"):
        load_yaml(bomb, "c.yaml")
    assert time.perf_counter() - t0 < 1.0
    assert load_yaml("a: &x [1, 2]\nb: *x\n", "ok.yaml") == {"a": [1, 2], "b": [1, 2]}
    from helpers import error_lines, ssltk as run_cli

    (tmp_path / "c.yaml").write_text(bomb)
    proc = run_cli("fit", "--config", str(tmp_path / "c.yaml"), timeout=60)
    assert proc.returncode == 2 and len(error_lines(proc)) == 1 and "aliases expand" in proc.stderr, proc.stderr


def test_shard_members_that_are_links_or_leave_the_shard_are_skipped_with_one_warning(tmp_path, capsys):
    import tarfile

    from ssltk.data.records import index_shards

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG")
    jpeg = buf.getvalue()
    shard = tmp_path / "hostile.tar"
    with tarfile.open(shard, "w") as tar:
        def add(name, data=jpeg, kind=tarfile.REGTYPE, target=""):
            info = tarfile.TarInfo(name)
            info.type, info.linkname, info.size = kind, target, len(data) if kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("good.jpg")
        add("../../escape.jpg")
        add("/abs/olute.jpg")
        add("a/../../up.jpg")
        add("link.jpg", kind=tarfile.SYMTYPE, target="/etc/passwd")
        add("hard.jpg", kind=tarfile.LNKTYPE, target="good.jpg")
    records, _ = index_shards([str(shard)])
    assert [e[3] for e in records.entries] == ["good.jpg"]
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1 and "hostile.tar" in err[0] and "skipped 5 member(s)" in err[0], err
