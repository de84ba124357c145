"""The HTTP plumbing the Kubernetes and Consul emulators share: quiet about clients that hang up."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from spotmax_world._http import Emulator, EmulatorHTTPServer

TRACEBACK_HEADER = "Exception occurred during processing of request"


class _Echo(Emulator):
    def __init__(self) -> None:
        super().__init__()
        self.router.add("GET", "/echo", lambda request: {"path": request.path, "size": "x" * 100_000})


@pytest.fixture
def echo() -> Iterator[tuple[_Echo, int]]:
    emulator = _Echo()
    port = emulator.serve()
    yield emulator, port
    emulator.stop()


def _get(connection: socket.socket, path: str) -> bytes:
    connection.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    reader = connection.makefile("rb")
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += reader.readline()
    lines = head.split(b"\r\n")
    length = next(int(line.split(b":")[1]) for line in lines if line.lower().startswith(b"content-length"))
    return reader.read(length)


def _wait_for_threads(baseline: int) -> None:
    deadline = time.monotonic() + 5
    while threading.active_count() > baseline:
        assert time.monotonic() < deadline, "the connection's thread never ended"
        time.sleep(0.02)


def test_a_client_resetting_an_idle_keep_alive_connection_prints_nothing(
    echo: tuple[_Echo, int], capfd: pytest.CaptureFixture[str]
) -> None:
    emulator, port = echo
    baseline = threading.active_count()
    connection = socket.create_connection(("127.0.0.1", port), timeout=5)
    body = json.loads(_get(connection, "/echo"))  # larger than the response buffer: arrives whole
    assert body["path"] == "/echo" and len(body["size"]) == 100_000
    assert json.loads(_get(connection, "/echo"))["path"] == "/echo"  # the connection is kept alive
    # Close with a reset (linger 0), as a client process that exits does to its idle connections.
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    connection.close()
    _wait_for_threads(baseline)
    assert TRACEBACK_HEADER not in capfd.readouterr().err
    assert emulator.requests["GET /echo"] == 2


@pytest.mark.parametrize("error", [ConnectionResetError(104, "reset"), BrokenPipeError(32, "pipe")])
def test_client_hang_ups_are_not_errors(error: OSError, capsys: pytest.CaptureFixture[str]) -> None:
    server = EmulatorHTTPServer(("127.0.0.1", 0), _Echo().handler_class())
    try:
        try:
            raise error
        except OSError:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    assert capsys.readouterr().err == ""


def test_other_errors_are_still_printed(capsys: pytest.CaptureFixture[str]) -> None:
    server = EmulatorHTTPServer(("127.0.0.1", 0), _Echo().handler_class())
    try:
        try:
            raise ValueError("a real bug")
        except ValueError:
            server.handle_error(None, ("127.0.0.1", 1))
    finally:
        server.server_close()
    err = capsys.readouterr().err
    assert TRACEBACK_HEADER in err and "ValueError: a real bug" in err
