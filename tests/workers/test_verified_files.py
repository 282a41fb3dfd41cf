"""Checksummed files: round trip, and damage is detected instead of loaded."""

import hashlib
import pickle

import pytest
import torch

from analog_sweep.workers import CorruptFileError
from analog_sweep.workers._verified_files import MAGIC, load_verified, save_verified


def test_round_trip_of_tensors_and_plain_values(tmp_path):
    payload = {"w": torch.arange(6.0).reshape(2, 3), "epoch": 3, "reports": [{"test_error": 12.5}]}
    save_verified(payload, tmp_path / "f.pt")
    loaded = load_verified(tmp_path / "f.pt")
    assert torch.equal(loaded["w"], payload["w"]) and loaded["epoch"] == 3 and loaded["reports"] == payload["reports"]
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize("damage", ["truncate", "flip", "foreign"])
def test_damaged_files_raise_corrupt_file_error(tmp_path, damage):
    path = tmp_path / "f.pt"
    save_verified({"w": torch.ones(100)}, path)
    blob = bytearray(path.read_bytes())
    if damage == "truncate":
        blob = blob[: len(blob) - 10]
    elif damage == "flip":
        blob[-20] ^= 0xFF
    else:
        buffer = tmp_path / "plain.pt"
        torch.save({"w": torch.ones(100)}, buffer)
        blob = bytearray(buffer.read_bytes())
    path.write_bytes(bytes(blob))
    with pytest.raises(CorruptFileError):
        load_verified(path)


class _RunsCodeWhenUnpickled:
    def __reduce__(self):
        return (exec, ("import pathlib; pathlib.Path('PWNED').write_text('x')",))


def test_code_in_a_file_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = pickle.dumps({"w": _RunsCodeWhenUnpickled()})
    path = tmp_path / "evil.pt"
    path.write_bytes(MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)
    with pytest.raises(CorruptFileError, match="refused"):
        load_verified(path)
    assert not (tmp_path / "PWNED").exists()
