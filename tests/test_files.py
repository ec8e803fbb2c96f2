import pytest
import torch

from coursekit import files


def test_writes_replace_whole_files_and_leave_no_temporaries(tmp_path):
    files.write_text(tmp_path / "a.json", "old")
    files.write_text(tmp_path / "a.json", "new")
    files.save_torch({"x": torch.ones(2)}, tmp_path / "b.pt")
    assert (tmp_path / "a.json").read_text() == "new"
    assert torch.equal(torch.load(tmp_path / "b.pt")["x"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.pt"]


def test_a_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    files.save_torch({"round": 1}, tmp_path / "ckpt.pt")

    def broken(obj, path):
        open(path, "wb").write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(files.torch, "save", broken)
    with pytest.raises(KeyboardInterrupt):
        files.save_torch({"round": 2}, tmp_path / "ckpt.pt")
    monkeypatch.undo()
    assert torch.load(tmp_path / "ckpt.pt") == {"round": 1}
