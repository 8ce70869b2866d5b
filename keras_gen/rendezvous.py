"""The tasks of a multi-worker cluster wait for one another before TensorFlow starts.

`MultiWorkerMirroredStrategy()` starts TensorFlow's coordination service, and its start
blocks until every task of `TF_CONFIG` has registered: inside one C++ call that holds the
Python interpreter, so that while a task waits for a peer that never comes, neither Ctrl-C
nor any Python thread can act, nothing is printed, and SIGTERM is caught by TensorFlow's
preemption notifier (which keeps catching it for the rest of the process).

So keras-gen first gathers the cluster itself, in Python: each task listens on its own
`TF_CONFIG` address, says hello to every other task's address (retrying until it answers)
and waits for every other task's hello. A task is done once every other task has answered
its hello and sent its own: then every peer has reached it, and it closes its listener and
lets TensorFlow take the port. While it waits it can be interrupted or killed, it says whom
it waits for, and after `timeout` seconds it gives up with a one-line error naming them.

The hello is one line, `keras-gen-rendezvous 1 <type> <index>\\n`, answered with the
answering task's own; a port that answers anything else is not taken for the peer.
"""
from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import sys
import threading
import time

from keras_gen.errors import KerasGenError, Terminated

PROTOCOL = b"keras-gen-rendezvous 1"
DEFAULT_TIMEOUT = 600.0  # seconds; KERAS_GEN_RENDEZVOUS_TIMEOUT overrides it
RETRY_SECONDS = 0.3  # between attempts to reach a task that is not listening yet
FIRST_NOTICE_SECONDS = 5.0  # say whom we wait for once the wait is this long, then every NOTICE_SECONDS
NOTICE_SECONDS = 60.0
MAX_LINE = 200


def members(config) -> list[tuple[str, int, str]]:
    """`(type, index, "host:port")` of every task that takes part in the all-reduces (the chief
    and the workers of a checked `TF_CONFIG`, `keras_gen.distribute.tf_config`)."""
    cluster = config["cluster"]
    return [(kind, index, address) for kind in ("chief", "worker")
            for index, address in enumerate(cluster.get(kind) or [])]


def timeout_from_environment() -> float:
    value = os.environ.get("KERAS_GEN_RENDEZVOUS_TIMEOUT")
    if not value:
        return DEFAULT_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < float("inf"):
        raise KerasGenError(f"KERAS_GEN_RENDEZVOUS_TIMEOUT must be a positive number of seconds, got {value!r}")
    return seconds


def _split(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise KerasGenError(f"TF_CONFIG address {address!r} is not host:port")
    return host.strip("[]"), int(port)


def _hello(kind, index) -> bytes:
    return PROTOCOL + f" {kind} {index}\n".encode()


def _name(member) -> str:
    kind, index, address = member
    return f"{kind} {index} ({address})"


def _listen(member):
    host, port = _split(member[2])
    try:
        if ":" in host and socket.has_dualstack_ipv6():
            listener = socket.create_server(("", port), family=socket.AF_INET6, dualstack_ipv6=True)
        else:
            listener = socket.create_server(("", port))
    except OSError as exc:
        raise KerasGenError(f"cannot listen on this task's TF_CONFIG address {member[2]} ({_name(member)}): "
                            f"{exc.strerror or exc}") from None
    listener.setblocking(False)
    return listener


@contextlib.contextmanager
def _sigterm_raises():
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield  # a handler of the caller's own: theirs to keep
        return

    def terminated(signum, frame):
        # Raised, so that the run folder made for the run is removed on the way out.
        raise Terminated("terminated (SIGTERM) while waiting for the cluster")

    signal.signal(signal.SIGTERM, terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


class _Link:
    """One connection: `incoming` (a peer's hello, answered) or outgoing (our hello to `peer`)."""

    def __init__(self, sock, peer=None):
        self.sock, self.peer, self.buffer = sock, peer, b""
        self.connected = peer is None
        self.answered = False


def gather(config, timeout: float | None = None, say=None) -> None:
    """Return once every other chief and worker task of `config` (a checked `TF_CONFIG`) has
    exchanged hellos with this one (see the module docstring); a KerasGenError after
    `timeout` seconds (default: `KERAS_GEN_RENDEZVOUS_TIMEOUT` or 600) naming the tasks that
    did not answer. `say(line)` reports the wait (default: to stderr)."""
    timeout = timeout_from_environment() if timeout is None else timeout
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    task = config["task"]
    everyone = members(config)
    me = next(m for m in everyone if (m[0], m[1]) == (task["type"], task["index"]))
    others = [m for m in everyone if m is not me]
    if not others:
        return
    with _sigterm_raises():
        _exchange(me, others, everyone, timeout, say)


def _exchange(me, others, everyone, timeout, say):
    """`gather`'s hellos: listen, connect, answer, until every other task is reached and heard."""
    by_hello = {_hello(kind, index).rstrip(): (kind, index, address) for kind, index, address in others}
    to_reach = set(others)  # not yet answered our hello
    to_hear = set(others)  # not yet sent theirs
    retry_at = {m: 0.0 for m in others}
    outgoing = {}
    listener = _listen(me)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    start = time.monotonic()
    notice_at = start + FIRST_NOTICE_SECONDS
    try:
        while to_reach or to_hear:
            now = time.monotonic()
            if now - start > timeout:
                missing = sorted(to_reach | to_hear, key=everyone.index)
                raise KerasGenError(f"the cluster did not gather within {timeout:g} s: no hello from "
                                    f"{', '.join(_name(m) for m in missing)}; start keras-gen on every task of "
                                    "TF_CONFIG")
            if now >= notice_at:
                missing = sorted(to_reach | to_hear, key=everyone.index)
                say(f"keras-gen: {_name(me)} waiting for {', '.join(_name(m) for m in missing)}")
                notice_at = now + NOTICE_SECONDS
            for peer in to_reach:
                if peer not in outgoing and now >= retry_at[peer]:
                    outgoing[peer] = _connect(selector, peer)
            for key, events in selector.select(timeout=RETRY_SECONDS / 3):
                if key.fileobj is listener:
                    _accept(selector, listener)
                    continue
                link = key.data
                done = _progress(selector, link, events, me, by_hello)
                if done is None:
                    continue
                _close(selector, link)
                if link.peer is not None:  # our hello: answered by the peer, or failed (retry)
                    del outgoing[link.peer]
                    if done:
                        to_reach.discard(link.peer)
                    else:
                        retry_at[link.peer] = time.monotonic() + RETRY_SECONDS
                elif done:
                    to_hear.discard(done)
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()


def _connect(selector, peer):
    host, port = _split(peer[2])
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    link = _Link(sock, peer)
    sock.connect_ex((host, port))
    selector.register(sock, selectors.EVENT_WRITE, link)
    return link


def _accept(selector, listener):
    while True:
        try:
            sock, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            return
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, _Link(sock))


def _close(selector, link):
    selector.unregister(link.sock)
    link.sock.close()


def _progress(selector, link, events, me, by_hello):
    """Advance one link. Returns None while it goes on; for our hello True (answered) or
    False (failed: retry); for a peer's hello the peer (heard) or False (not a peer)."""
    sock = link.sock
    if not link.connected:  # our connect finished: send the hello, then wait for the answer
        if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            return False
        link.connected = True
        try:
            sock.sendall(_hello(me[0], me[1]))
        except OSError:
            return False
        selector.modify(sock, selectors.EVENT_READ, link)
        return None
    try:
        data = sock.recv(MAX_LINE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError:
        return False
    if link.answered:  # a peer's connection, answered: its close ends it
        return link.answered if not data else None
    link.buffer += data
    if b"\n" not in link.buffer:
        return False if not data or len(link.buffer) > MAX_LINE else None
    line = link.buffer.split(b"\n", 1)[0]
    if link.peer is not None:  # the peer's answer must be its own hello
        return line == _hello(link.peer[0], link.peer[1]).rstrip()
    peer = by_hello.get(line)
    if peer is None:
        return False
    try:
        sock.sendall(_hello(me[0], me[1]))
    except OSError:
        return False
    # Wait for the peer to close first, so that the closed connection's TIME_WAIT stays on
    # its side and this port is free for TensorFlow's server.
    link.answered = peer
    return None
