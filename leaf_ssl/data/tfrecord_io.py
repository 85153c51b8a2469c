"""TFRecord files read without TensorFlow: the framing, and the files themselves.

A TFRecord file is a sequence of records, each framed as

    uint64 length | uint32 masked CRC-32C of length | length bytes of data | uint32 masked CRC-32C of data

(little-endian). The reader checks the length's checksum, which catches a truncated or garbled frame
before a wrong length sends it far into the file; it does not check the data's: a pure-Python CRC over
megabytes of audio per clip would cost more than the rest of reading it, and a flipped bit inside a
clip's samples is noise, as it would be in a WAV file. A record whose bytes are not a valid Example is
still caught, by the Example parser.

Local paths are read with Python's own files. Paths with a scheme (``gs://...``) go through
TensorFlow's filesystems, the only part of this module that needs TensorFlow.
"""
from __future__ import annotations

import glob as local_glob
import os
import struct
from typing import BinaryIO, Iterator

_HEADER = struct.Struct("<QI")
_FOOTER_BYTES = 4


class DamagedShardError(OSError):
    """A TFRecord file whose framing is broken: truncated, or a length whose checksum does not match."""


def _crc32c_table() -> list[int]:
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ (0x82F63B78 if value & 1 else 0)
        table.append(value)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), bit-reflected, as TFRecord frames use it. Pure Python: for short inputs."""
    value = 0xFFFFFFFF
    for byte in data:
        value = _CRC32C_TABLE[(value ^ byte) & 0xFF] ^ (value >> 8)
    return value ^ 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The checksum as stored in a frame: rotated right by 15 bits plus a constant."""
    value = crc32c(data)
    return (((value >> 15) | (value << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def has_scheme(path: str) -> bool:
    return "://" in path


def _gfile():
    try:
        import tensorflow as tf
    except ImportError as error:
        raise OSError("paths with a scheme (gs://...) are read through TensorFlow's filesystems, and "
                      f"TensorFlow does not import here ({error}); copy the shards to a local folder") from error
    return tf.io.gfile


def open_binary(path: str) -> BinaryIO:
    return _gfile().GFile(path, "rb") if has_scheme(path) else open(path, "rb")


def read_text(path: str) -> str:
    return _gfile().GFile(path).read() if has_scheme(path) else open(path).read()


def is_dir(path: str) -> bool:
    return _gfile().isdir(path) if has_scheme(path) else os.path.isdir(path)


def glob(pattern: str) -> list[str]:
    """Files and folders matching `pattern`, sorted."""
    return sorted(_gfile().glob(pattern) if has_scheme(pattern) else local_glob.glob(pattern))


def read_records(path: str) -> Iterator[bytes]:
    """Yields the data of each record of one TFRecord file, in order.

    Raises:
      DamagedShardError: at the first broken frame (the records before it have been yielded).
    """
    with open_binary(path) as stream:
        index = 0
        while True:
            header = stream.read(_HEADER.size)
            if not header:
                return
            if len(header) < _HEADER.size:
                raise DamagedShardError(f"{path}: record {index} is truncated in its header")
            length, length_crc = _HEADER.unpack(header)
            if masked_crc32c(header[:8]) != length_crc:
                raise DamagedShardError(f"{path}: record {index}'s length fails its checksum")
            data = stream.read(length)
            footer = stream.read(_FOOTER_BYTES)
            if len(data) < length or len(footer) < _FOOTER_BYTES:
                raise DamagedShardError(f"{path}: record {index} is truncated ({len(data)} of {length} bytes)")
            yield data
            index += 1
