"""A generated catalogue of values, and the check that one came back the same (issue 9).

Any path a result can take (the wire's body and out-of-band buffers, saved checkpoint
files, each backend, Dask's pickles, a shared-memory path for big arrays) is tested by
sending `catalogue()` through it and calling `assert_same(got, sent)` on what came back,
so no path can quietly change a value's type, shape, dtype, byte order or layout.

The catalogue is every dtype below, as a 0-d array, a numpy scalar, an empty array, a
small array (inside msgpack) and a big one (>= 64 KiB, out of band), each C-ordered,
Fortran-ordered and as a strided view, big-endian where the dtype has a byte order;
then object, structured and StringDType arrays (pickled), array subclasses, and the same
values nested in dicts, lists and tuples.
"""

from __future__ import annotations

import datetime
import tempfile

import numpy as np

BIG = 64 * 1024  # _wire.OOB_THRESHOLD, stated here so a change to it cannot hide a path

DTYPES = ["?", "i1", "u1", "i2", "u2", "i4", "u4", "i8", "u8", "f2", "f4", "f8", "g",
          "c8", "c16", "M8[ns]", "M8[D]", "m8[s]", "m8[3ms]", "U1", "U7", "S1", "S5", "V3"]


def _values(dtype: np.dtype, n: int) -> np.ndarray:
    """n distinct-ish values of `dtype`, with NaN/NaT where the dtype has one."""
    i = np.arange(n)
    if dtype.kind in "US":
        width = dtype.itemsize // (4 if dtype.kind == "U" else 1)
        a = np.array([str(x * 12345)[:width] for x in i], dtype=dtype.kind)
    elif dtype.kind == "V":
        a = np.frombuffer(bytes((x * 31) % 256 for x in range(n * dtype.itemsize)),
                          dtype=dtype)
    elif dtype.kind == "c":
        a = np.cos(i) + 1j * i
    elif dtype.kind == "f":
        a = np.sin(i) * 1e3
    else:  # bool, ints, datetime64, timedelta64
        a = (i * 7919 + 1) % min(int(np.iinfo(dtype).max), 2 ** 31) if dtype.kind in "iu" \
            else (i * 7919 + 1) % 3 == 0 if dtype.kind == "b" else i * 86_400 + 12_345
    a = np.asarray(a).astype(dtype)
    if n and dtype.kind in "fcmM":
        a[-1] = np.nan if dtype.kind in "fc" else np.array("NaT", dtype.str.lstrip("<>"))
    return a


def _arrays(code: str):
    base = np.dtype(code)
    orders = [base] + ([base.newbyteorder(">")] if base.byteorder not in "|" and
                       base.itemsize > 1 else [])
    for dtype in orders:
        tag = f"{code}{'>' if dtype.byteorder == '>' else ''}"
        yield f"{tag} 0-d", _values(dtype, 1).reshape(())
        yield f"{tag} empty", _values(dtype, 0)
        yield f"{tag} empty 2-d", _values(dtype, 0).reshape(0, 3)
        for size, n in (("small", 24), ("big", max(BIG // dtype.itemsize + 8, 24))):
            a = _values(dtype, n * 2)
            yield f"{tag} {size}", a[:n]
            c = a[: n - n % 4].reshape(4, -1)
            yield f"{tag} {size} C 2-d", c
            yield f"{tag} {size} F 2-d", np.asfortranarray(c)
            yield f"{tag} {size} strided", a[::2]
            yield f"{tag} {size} F strided", np.asfortranarray(c)[:, ::2]
    scalar = _values(base, 1)[0]
    yield f"{code} scalar", scalar


def _memmap() -> np.memmap:
    with tempfile.TemporaryFile() as f:  # the mapping outlives the file object
        m = np.memmap(f, dtype=">i4", mode="w+", shape=(BIG // 4 + 10,))
    m[:] = np.arange(len(m))
    return m


def catalogue() -> list[tuple[str, object]]:
    """(name, value) pairs: every case described in the module docstring."""
    cases = [case for code in DTYPES for case in _arrays(code)]
    obj = np.array([1, "two", None, (3,), datetime.date(2020, 1, 1)], dtype=object)
    structured = np.zeros(5, dtype=[("a", "<i4"), ("b", ">f8"), ("c", "U3")])
    structured["a"], structured["b"], structured["c"] = range(5), np.arange(5) / 2, "xyz"
    cases += [
        ("object 1-d", obj),
        ("object 0-d", np.array(None, dtype=object)),
        ("object 2-d F", np.asfortranarray(np.array([[1, "a"], [None, 2.5]], dtype=object))),
        ("structured", structured),
        ("structured 0-d", structured[1:2].reshape(())),
        ("structured scalar", structured[2]),
        ("structured big", np.zeros(BIG // 8, dtype=structured.dtype)),
        ("StringDType", np.array(["a", "bcd", ""], dtype=np.dtypes.StringDType())),
        ("empty str scalar", np.str_("")),
        ("empty bytes scalar", np.bytes_(b"")),
        ("masked array", np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0])),
        ("memmap rows", _memmap()[2:]),  # what a CLI chunk of a .npy is
        ("matrix", np.matrix([[1, 2], [3, 4]])),
        ("float32 scalar", np.float32(1)),
        ("datetime64 scalar NaT", np.datetime64("NaT", "s")),
        ("python values", [1, 2 ** 80, 1.5, 1 + 2j, True, None, "s", b"b", (1,), {}]),
    ]
    nested = {"dict": {name: value for name, value in cases[:40]},
              "list": [value for _, value in cases[40:80]],
              "tuple": tuple(value for _, value in cases[80:120]),
              "deep": [({"k": (cases[0][1], [cases[5][1]])},)]}
    return cases + [(f"nested {k}", v) for k, v in nested.items()]


def layout(a: np.ndarray) -> str:
    return "C" if a.flags.c_contiguous else "F" if a.flags.f_contiguous else "strided"


def assert_same(got, sent, where: str = "value") -> None:
    """`got` is `sent` as far as a receiver can tell: same type, and for arrays the same
    dtype (byte order included), shape and values (NaN equal to NaN), and C or F
    contiguity kept (a strided view may come back in either order, but contiguous)."""
    assert type(got) is type(sent) or (type(sent) is np.memmap and type(got) is np.ndarray), \
        f"{where}: {type(sent).__name__} came back as {type(got).__name__}"
    if isinstance(sent, dict):
        assert list(got) == list(sent), f"{where}: keys {list(got)} != {list(sent)}"
        for k in sent:
            assert_same(got[k], sent[k], f"{where}[{k!r}]")
    elif isinstance(sent, (list, tuple)):
        assert len(got) == len(sent), f"{where}: length {len(got)} != {len(sent)}"
        for i, (g, s) in enumerate(zip(got, sent)):
            assert_same(g, s, f"{where}[{i}]")
    elif isinstance(sent, (np.ndarray, np.generic)):
        assert got.dtype == sent.dtype and got.dtype.str == sent.dtype.str, \
            f"{where}: dtype {got.dtype.str} != {sent.dtype.str}"
        assert got.shape == sent.shape, f"{where}: shape {got.shape} != {sent.shape}"
        if isinstance(sent, np.ndarray) and layout(sent) != "strided":
            assert layout(got) == layout(sent) or (got.ndim < 2 or 0 in got.shape), \
                f"{where}: {layout(sent)}-ordered array came back {layout(got)}"
        if isinstance(sent, np.ma.MaskedArray):
            assert np.array_equal(got.mask, sent.mask), f"{where}: mask lost"
        nan = sent.dtype.kind in "fcmM"
        assert np.array_equal(got, sent, equal_nan=nan), f"{where}: values differ"
    else:
        assert got == sent, f"{where}: {got!r} != {sent!r}"


def check_round_trip(send) -> None:
    """Send the whole catalogue's values as one list through `send` (a function from that
    list to what came back) and fail with every case that did not come back the same."""
    cases = catalogue()
    got = send([value for _, value in cases])
    assert len(got) == len(cases), f"{len(cases)} values sent, {len(got)} came back"
    wrong = []
    for (name, sent), back in zip(cases, got):
        try:
            assert_same(back, sent, name)
        except AssertionError as exc:
            wrong.append(str(exc))
    assert not wrong, f"{len(wrong)} of {len(cases)} values changed:\n  " + "\n  ".join(wrong)
