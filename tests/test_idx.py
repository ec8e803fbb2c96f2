import gzip

import numpy as np
import pytest

from coursekit import idx


@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_write_read_roundtrip(tmp_path, name, dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    back = idx.read_idx(idx.write_idx(tmp_path / name, array))
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_payload_hash_ignores_compression(tmp_path):
    array = np.arange(10, dtype=np.uint8)
    plain = idx.write_idx(tmp_path / "x", array)
    packed = idx.write_idx(tmp_path / "x.gz", array)
    assert plain.read_bytes() != packed.read_bytes()
    assert idx.payload_sha256(plain) == idx.payload_sha256(packed)


def test_not_an_idx_file(tmp_path):
    (tmp_path / "x").write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an IDX file"):
        idx.read_idx(tmp_path / "x")


def test_truncated_idx_file(tmp_path):
    path = idx.write_idx(tmp_path / "x", np.zeros((4, 4), np.uint8))
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"shape \(4, 4\)"):
        idx.read_idx(path)


def test_unsupported_dtype(tmp_path):
    with pytest.raises(ValueError, match="no IDX code"):
        idx.write_idx(tmp_path / "x", np.zeros(3, np.complex64))


def test_download_verifies_and_places_file(http_dir, tmp_path):
    served, url = http_dir
    array = np.arange(100, dtype=np.uint8).reshape(10, 10)
    src = idx.write_idx(served / "good.gz", array)
    dest = idx.download(url + "good.gz", tmp_path / "out" / "good.gz", idx.payload_sha256(src))
    np.testing.assert_array_equal(idx.read_idx(dest), array)


def test_corrupted_download_is_refused_and_not_kept(http_dir, tmp_path):
    served, url = http_dir
    good = idx.write_idx(tmp_path / "good.gz", np.arange(100, dtype=np.uint8))
    expected = idx.payload_sha256(good)
    idx.write_idx(served / "bad.gz", np.arange(1, 101, dtype=np.uint8))  # same size, other bytes
    out = tmp_path / "out"
    with pytest.raises(idx.ChecksumError, match=r"SHA-256 .* expected"):
        idx.download(url + "bad.gz", out / "bad.gz", expected)
    assert list(out.iterdir()) == []  # neither the file nor a partial download is left


def test_truncated_gzip_download_is_refused(http_dir, tmp_path):
    served, url = http_dir
    payload = gzip.compress(bytes(range(256)) * 50)
    (served / "cut.gz").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(idx.ChecksumError, match="not readable"):
        idx.download(url + "cut.gz", tmp_path / "cut.gz", "0" * 64)
    assert not (tmp_path / "cut.gz").exists()


def test_download_error_from_server(http_dir, tmp_path):
    _, url = http_dir
    with pytest.raises(OSError):
        idx.download(url + "missing.gz", tmp_path / "m.gz", "0" * 64)
    assert list(tmp_path.glob("m.gz*")) == []


def test_a_truncated_gzip_names_the_file(tmp_path):
    path = idx.write_idx(tmp_path / "x.gz", np.arange(1000, dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:20])  # a partly copied download
    with pytest.raises(ValueError, match=r"IDX file .*x\.gz is truncated or corrupted"):
        idx.read_idx(path)
    with pytest.raises(ValueError, match="truncated or corrupted"):
        idx.payload_sha256(path)
    with pytest.raises(ValueError, match="write_idx takes a NumPy array, got list"):
        idx.write_idx(tmp_path / "y", [[1, 2]])
