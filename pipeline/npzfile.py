"""Uncompressed `.npz` files that are byte-identical for identical arrays and can be memory-mapped.

`np.savez` stamps each zip entry with the current time, so two packs of the same data differ. Here
the zip is written directly: fixed timestamps, members stored (not deflated), and each member's
`.npy` data aligned to 64 bytes inside the file by padding the zip local header's extra field
(id 0xD935, as Android's zipalign does). `np.load` still reads the files; `open_members` maps
each array with `np.memmap` at its data offset instead, so a dataset larger than RAM trains.
"""
from __future__ import annotations

import io
import os
import struct
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

import durable

ALIGN = 64
_EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold
_PAD_ID = 0xD935
_LOCAL_HEADER = struct.Struct("<4s5H3L2H")  # zip local file header, 30 bytes
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


class NpzLayoutError(ValueError):
    """The file is not a readable stored npz (truncated, compressed, or not a zip)."""


def write_npz(path: Path | str, arrays: Mapping[str, np.ndarray]) -> None:
    """Write `arrays` as `<name>.npy` members to `path` durably (`durable.replacing`)."""
    with durable.replacing(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
            member = f"{name}.npy"
            info = zipfile.ZipInfo(member, date_time=_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.create_system = 3  # unix, whatever the platform: same bytes everywhere
            info.external_attr = 0o644 << 16
            offset = zf.fp.tell() + _LOCAL_HEADER.size + len(member.encode()) + 4
            pad = -offset % ALIGN
            info.extra = struct.pack("<HH", _PAD_ID, pad) + bytes(pad)
            zf.writestr(info, buf.getbuffer())


def open_members(path: Path | str) -> dict[str, np.memmap]:
    """Memory-map every `.npy` member of a stored npz, read-only. Raises NpzLayoutError."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
        arrays = {}
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            for info in infos:
                if info.compress_type != zipfile.ZIP_STORED:
                    raise NpzLayoutError(f"member {info.filename} is compressed")
                f.seek(info.header_offset)
                fields = _LOCAL_HEADER.unpack(f.read(_LOCAL_HEADER.size))
                if fields[0] != b"PK\x03\x04":
                    raise NpzLayoutError(f"member {info.filename} has no local header")
                name_len, extra_len = fields[-2], fields[-1]
                start = info.header_offset + _LOCAL_HEADER.size + name_len + extra_len
                f.seek(start)
                version = np.lib.format.read_magic(f)
                read_header = _HEADER_READERS.get(version)
                if read_header is None:
                    raise NpzLayoutError(f"member {info.filename} has unsupported .npy version {version}")
                shape, fortran, dtype = read_header(f)
                data = f.tell()
                nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                if fortran or dtype.hasobject or data + nbytes > size or data - start + nbytes != info.file_size:
                    raise NpzLayoutError(f"member {info.filename} is truncated or malformed")
                key = info.filename.removesuffix(".npy")
                if nbytes == 0:
                    arrays[key] = np.zeros(shape, dtype)  # mmap cannot map zero bytes
                else:
                    arrays[key] = np.memmap(path, dtype=dtype, mode="r", offset=data, shape=shape)
        return arrays
    except (zipfile.BadZipFile, struct.error, ValueError, EOFError) as err:
        if isinstance(err, NpzLayoutError):
            raise
        raise NpzLayoutError(str(err).splitlines()[0] if str(err) else type(err).__name__) from None
