"""RFC 6455 framing shared by both sides of the WebSocket experiments (standard library only).

:mod:`syslab.children.ws_peer` (the child) and :mod:`syslab.websocket` (the parent, which
re-exports these names) use the same codec: :func:`accept_key`, :func:`encode_frame`,
:func:`decode_frame`.
"""

from __future__ import annotations

import base64
import hashlib
import struct

__all__ = ["GUID", "OPCODES", "accept_key", "decode_frame", "encode_frame"]


def _opcode(opcode: str) -> str:
    if opcode not in OPCODES:
        raise ValueError(f"opcode must be one of {sorted(OPCODES)}, got {opcode!r}")
    return opcode


GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
OPCODES = {"continuation": 0x0, "text": 0x1, "binary": 0x2, "close": 0x8, "ping": 0x9, "pong": 0xA}

# --------------------------------------------------------------------------- RFC 6455 framing


def accept_key(client_key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``: base64(SHA-1(key + GUID)) (RFC 6455 §4.2.2)."""
    if not isinstance(client_key, str) or not client_key:
        raise ValueError(f"client_key must be a non-empty string, got {client_key!r}")
    return base64.b64encode(hashlib.sha1((client_key + GUID).encode("ascii")).digest()).decode("ascii")


def encode_frame(payload: bytes, opcode: str = "text", *, mask_key: bytes | None = None, fin: bool = True):
    """One RFC 6455 frame (§5.2). Clients MUST mask (pass ``mask_key``, 4 bytes); servers MUST NOT.

    Control frames (close, ping, pong) carry at most 125 bytes and are never fragmented (§5.5).
    """
    if not isinstance(payload, bytes | bytearray):
        raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
    code = OPCODES[_opcode(opcode)]
    if code >= 0x8 and (len(payload) > 125 or not fin):
        raise ValueError(
            f"payload of a control frame must be <= 125 bytes and unfragmented, got {len(payload)}"
        )
    if mask_key is not None and (not isinstance(mask_key, bytes) or len(mask_key) != 4):
        raise ValueError(f"mask_key must be 4 bytes, got {mask_key!r}")
    header = bytearray([(0x80 if fin else 0) | code])
    mask_bit = 0x80 if mask_key is not None else 0
    n = len(payload)
    if n < 126:
        header.append(mask_bit | n)
    elif n < 1 << 16:
        header.append(mask_bit | 126)
        header += struct.pack("!H", n)
    else:
        header.append(mask_bit | 127)
        header += struct.pack("!Q", n)
    if mask_key is None:
        return bytes(header) + bytes(payload)
    return bytes(header) + mask_key + _xor_mask(bytes(payload), mask_key)


def _xor_mask(data: bytes, mask_key: bytes) -> bytes:
    # XOR with the key repeated (§5.3), as one big-integer XOR: fast without numpy.
    if not data:
        return b""
    key = (mask_key * (len(data) // 4 + 1))[: len(data)]
    return (int.from_bytes(data, "big") ^ int.from_bytes(key, "big")).to_bytes(len(data), "big")


def decode_frame(buffer: bytes) -> tuple[dict, int] | None:
    """Parse one frame from the start of ``buffer``.

    Returns ``(frame, consumed_bytes)`` with ``frame`` = ``{"fin", "opcode", "masked",
    "payload"}`` (payload unmasked), or None if ``buffer`` does not yet hold a whole frame.
    """
    if not isinstance(buffer, bytes | bytearray):
        raise TypeError(f"buffer must be bytes, got {type(buffer).__name__}")
    if len(buffer) < 2:
        return None
    first, second = buffer[0], buffer[1]
    n, offset = second & 0x7F, 2
    if n == 126:
        if len(buffer) < 4:
            return None
        (n,) = struct.unpack("!H", buffer[2:4])
        offset = 4
    elif n == 127:
        if len(buffer) < 10:
            return None
        (n,) = struct.unpack("!Q", buffer[2:10])
        offset = 10
    masked = bool(second & 0x80)
    key = b""
    if masked:
        if len(buffer) < offset + 4:
            return None
        key, offset = bytes(buffer[offset : offset + 4]), offset + 4
    if len(buffer) < offset + n:
        return None
    payload = bytes(buffer[offset : offset + n])
    if masked:
        payload = _xor_mask(payload, key)
    names = {code: name for name, code in OPCODES.items()}
    frame = {"fin": bool(first & 0x80), "opcode": names.get(first & 0x0F, "reserved"), "masked": masked}
    frame["payload"] = payload
    return frame, offset + n
