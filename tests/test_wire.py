"""The message format on its own: framing, partial reads, garbage."""

from __future__ import annotations

import os

import numpy as np
import pytest

from batch import _frames, _wire
from roundtrip_catalogue import check_round_trip


def send(payload, kind=_wire.RESULT) -> bytes:
    return b"".join(bytes(b) for b in _wire.encode(kind, payload))


def read(raw: bytes, piece: int = 7):
    """Feed `raw` to a Reader through a real pipe, `piece` bytes at a time."""
    r, w = os.pipe()
    os.set_blocking(r, False)
    reader = _frames.Reader()
    try:
        for i in range(0, len(raw), piece):
            os.write(w, raw[i:i + piece])
            assert reader.feed(r) is False
        os.close(w)
        w = -1
        assert reader.feed(r) is True
    finally:
        os.close(r)
        if w >= 0:
            os.close(w)
    return reader


def test_round_trip_in_small_pieces():
    payload = {"x": (1, np.arange(50_000, dtype=np.int32)), "y": [np.float16(2), 2 ** 70]}
    reader = read(send(payload), piece=4093)
    assert reader.complete and reader.kind == _wire.RESULT
    got = reader.payload
    assert got["x"][0] == 1 and type(got["x"]) is tuple
    np.testing.assert_array_equal(got["x"][1], np.arange(50_000, dtype=np.int32))
    assert type(got["y"][0]) is np.float16 and got["y"][1] == 2 ** 70


def test_big_arrays_go_out_of_band():
    a = np.ones(_wire.OOB_THRESHOLD // 8 + 1)
    parts = _wire.encode(_wire.RESULT, [a, a])
    assert len(parts) == 4 and all(p.nbytes == a.nbytes for p in parts[2:])
    assert len(parts[1]) < 200  # only headers in the body


def test_truncated_message_is_incomplete():
    raw = send(np.arange(100_000))
    reader = read(raw[:-10], piece=65536)
    assert not reader.complete and reader.received == len(raw) - 10


def test_garbled_prefix_is_an_error():
    with pytest.raises(_wire.DecodeError, match="prefix"):
        read(b"NOPE" + bytes(40))


def test_bytes_after_the_message_are_counted():
    reader = read(send([1, 2]) + b"junk")
    assert reader.complete and reader.extra == 4


def test_unpicklable_object_names_its_type():
    import threading
    with pytest.raises(_wire.EncodeError, match="lock"):
        _wire.encode(_wire.RESULT, [threading.Lock()])


def test_saved_arrays_load_visible_to_later_workers(tmp_path):
    import batch

    path = tmp_path / "saved.msgpack"
    _wire.save(path, {"a": np.arange(1 << 18, dtype=np.float64)})
    loaded = _wire.load(path)["a"]
    assert batch.pmap(lambda i: float(loaded[i]), [1, (1 << 18) - 1], backend="fork",
                      chunksize=1) == [1.0, float((1 << 18) - 1)]


def test_catalogue_round_trips_through_a_message():
    check_round_trip(lambda values: read(send(values), piece=65536).payload)


def test_catalogue_round_trips_through_a_saved_file(tmp_path):
    def save_load(values):
        _wire.save(tmp_path / "values", values)
        return _wire.load(tmp_path / "values")

    check_round_trip(save_load)
