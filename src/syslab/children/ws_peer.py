"""A one-connection WebSocket server run as ``python -m syslab.children.ws_peer``.

Started by :func:`syslab.websocket.run_silent_send` and
:func:`syslab.keepalive.run_stopped_peer` as a child process. It listens on 127.0.0.1
(an ephemeral port, announced as ``{"event": "ready", "port": ...}``), completes the
RFC 6455 handshake of one client, announces ``{"event": "got", "seq": ...}`` for every
text message it processes and answers each with an unmasked text frame
``{"reply_to": <seq>}`` -- the application-level acknowledgement RFC 6455 itself does
not have. It exits after ``--max-life-s`` whatever happens, and when its parent dies.
The framing is :mod:`syslab.children._ws_frames`, shared with the parent.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys

from syslab.children import _protocol
from syslab.children._ws_frames import accept_key, decode_frame, encode_frame


def serve(max_life_s: float) -> int:
    """Accept one WebSocket client on 127.0.0.1 and acknowledge its text messages.

    Parameters
    ----------
    max_life_s : float
        Socket timeouts, seconds (the lifetime guard ends the process anyway).

    Returns
    -------
    int
        The exit status: 0 after a Close or end of stream, 1 if the handshake never came.
    """
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(max_life_s)
    _protocol.announce("ready", port=listener.getsockname()[1])
    conn, _ = listener.accept()
    listener.close()
    conn.settimeout(max_life_s)
    request = b""
    while b"\r\n\r\n" not in request:
        chunk = conn.recv(4096)
        if not chunk:
            return 1
        request += chunk
    head, buffer = request.split(b"\r\n\r\n", 1)
    key = ""
    for line in head.decode("latin-1").split("\r\n"):
        name, _, value = line.partition(":")
        if name.strip().lower() == "sec-websocket-key":
            key = value.strip()
    conn.sendall(
        (
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Accept: {accept_key(key)}\r\n\r\n"
        ).encode("ascii")
    )
    while True:
        while (parsed := decode_frame(buffer)) is not None:
            frame, used = parsed
            buffer = buffer[used:]
            if frame["opcode"] == "close":
                return 0
            if frame["opcode"] == "ping":
                conn.sendall(encode_frame(frame["payload"], "pong"))
            elif frame["opcode"] == "text":
                seq = frame["payload"].split(b" ", 1)[0].decode()
                _protocol.announce("got", seq=int(seq))
                conn.sendall(encode_frame(json.dumps({"reply_to": int(seq)}).encode(), "text"))
        chunk = conn.recv(1 << 16)
        if not chunk:
            return 0
        buffer += chunk


def main(argv: list[str] | None = None) -> int:
    """Parse ``--max-life-s``, start the guards and serve one client.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status.
    """
    parser = argparse.ArgumentParser(prog="python -m syslab.children.ws_peer")
    _protocol.add_common_arguments(parser, default_max_life_s=30.0)
    args = parser.parse_args(argv)
    _protocol.start_guards(args.max_life_s)
    return serve(args.max_life_s)


if __name__ == "__main__":
    sys.exit(main())
