"""The tasks of a multi-worker cluster wait for one another before TensorFlow starts.

`MultiWorkerMirroredStrategy()` starts TensorFlow's coordination service, and its start
blocks until every task of `TF_CONFIG` has registered: inside one C++ call that holds the
Python interpreter, so that while a task waits for a peer that never comes, neither Ctrl-C
nor any Python thread can act, nothing is printed, and SIGTERM is caught by TensorFlow's
preemption notifier (which keeps catching it for the rest of the process).

So keras-gen first gathers the cluster itself, in Python: each task listens on its own
`TF_CONFIG` address, says hello to every other task's address (retrying until it answers)
and answers every other task's hello. A task is done once every other task has answered its
hello and confirmed its answer to theirs: then every peer has reached it, and it closes its
listener and lets TensorFlow take the port. While it waits it can be interrupted or killed,
it says whom it waits for and why, and after `timeout` seconds it gives up with a one-line
error naming them.

The exchange, one line each: A connects to B and sends `keras-gen-rendezvous 2 <digest>
<type> <index>` (its own task, the digest of the cluster's chief and worker lists); B answers
with its own such line; A checks that it is B's, of the same cluster, and sends `ok`. A has
then reached B, and B has heard A. A port that answers anything else is not taken for the
peer, and the reason is reported.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import selectors
import signal
import socket
import sys
import threading
import time

from keras_gen.errors import KerasGenError, Terminated

PROTOCOL = b"keras-gen-rendezvous 2"
DEFAULT_TIMEOUT = 600.0  # seconds; KERAS_GEN_RENDEZVOUS_TIMEOUT overrides it
RETRY_SECONDS = 0.3  # between attempts to reach a task that is not listening yet
CONNECT_SECONDS = 5.0  # an attempt that has had no answer for this long is given up and retried
FIRST_NOTICE_SECONDS = 5.0  # say whom we wait for once the wait is this long, then every NOTICE_SECONDS
NOTICE_SECONDS = 60.0
MAX_LINE = 200
# Clusters this process has gathered: TensorFlow's server holds the port afterwards, and a
# second strategy of the same cluster in one process needs no second gathering.
_gathered: set = set()


def members(config) -> list[tuple[str, int, str]]:
    """`(type, index, "host:port")` of every task that takes part in the all-reduces (the chief
    and the workers of a checked `TF_CONFIG`, `keras_gen.distribute.tf_config`)."""
    cluster = config["cluster"]
    return [(kind, index, address) for kind in ("chief", "worker")
            for index, address in enumerate(cluster.get(kind) or [])]


def cluster_digest(config) -> str:
    """A short digest of the chief and worker lists: tasks whose TF_CONFIGs name different
    clusters do not take each other's hellos."""
    tasks = {kind: list(config["cluster"].get(kind) or []) for kind in ("chief", "worker")}
    return hashlib.sha256(json.dumps(tasks, sort_keys=True).encode()).hexdigest()[:16]


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


def _hello(digest, kind, index) -> bytes:
    return PROTOCOL + f" {digest} {kind} {index}\n".encode()


def _name(member) -> str:
    kind, index, address = member
    return f"{kind} {index} ({address})"


def _listen(member):
    _, port = _split(member[2])
    try:
        if socket.has_dualstack_ipv6():  # peers may reach this host by an IPv4 or an IPv6 address
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
    """One connection: incoming (`peer` None: a peer's hello, answered, then its "ok" awaited)
    or outgoing (our hello to `peer`, its answer checked, then our "ok" sent)."""

    def __init__(self, sock, peer=None):
        self.sock, self.peer, self.buffer = sock, peer, b""
        self.connected = peer is None
        self.heard = None  # incoming: the peer whose hello was answered, until its "ok"
        self.started = time.monotonic()


def gather(config, timeout: float | None = None, say=None) -> None:
    """Return once every other chief and worker task of `config` (a checked `TF_CONFIG`) has
    exchanged hellos with this one (see the module docstring); a KerasGenError after
    `timeout` seconds (default: `KERAS_GEN_RENDEZVOUS_TIMEOUT` or 600) naming the tasks that
    did not answer and why, where known. `say(line)` reports the wait (default: to stderr).
    Tasks other than the chief and workers (an evaluator) take no part and return at once,
    as does a task whose cluster this process has gathered already.

    Each hello carries a digest of the cluster's chief and worker lists, so tasks whose
    TF_CONFIGs disagree never count each other. A task counts a peer as reached when the
    peer answers its hello with the peer's own, and as heard when the peer confirms the
    answer ("ok"): a peer that gives up mid-exchange is heard from by no one. Every link of a
    task then holds; whether every other pair of tasks could reach each other is for
    TensorFlow's start to find out."""
    timeout = timeout_from_environment() if timeout is None else timeout
    say = say or (lambda line: print(line, file=sys.stderr, flush=True))
    task = config["task"]
    everyone = members(config)
    mine = [m for m in everyone if (m[0], m[1]) == (task["type"], task["index"])]
    digest = cluster_digest(config)
    if not mine or (digest, *mine[0][:2]) in _gathered:
        return
    me = mine[0]
    others = [m for m in everyone if m is not me]
    if others:
        with _sigterm_raises():
            _exchange(me, others, everyone, digest, timeout, say)
    _gathered.add((digest, *me[:2]))


def _exchange(me, others, everyone, digest, timeout, say):
    """`gather`'s hellos: listen, connect, answer, until every other task is reached and heard."""
    by_hello = {_hello(digest, kind, index).rstrip(): (kind, index, address) for kind, index, address in others}
    own_hello = _hello(digest, me[0], me[1])
    to_reach = set(others)  # not yet answered our hello
    to_hear = set(others)  # not yet confirmed our answer to theirs
    retry_at = {m: 0.0 for m in others}
    why = {}  # the last reason a peer could not be reached
    outgoing = {}
    listener = _listen(me)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    start = time.monotonic()
    notice_at = start + FIRST_NOTICE_SECONDS

    def missing():
        return ", ".join(_name(m) + (f" [{why[m]}]" if m in why else "")
                         for m in sorted(to_reach | to_hear, key=everyone.index))

    try:
        while to_reach or to_hear:
            now = time.monotonic()
            if now - start > timeout:
                raise KerasGenError(f"the cluster did not gather within {timeout:g} s: no hello from {missing()}; "
                                    "start keras-gen on every task of TF_CONFIG, with the same cluster")
            if now >= notice_at:
                say(f"keras-gen: {_name(me)} waiting for {missing()}")
                notice_at = now + NOTICE_SECONDS
            for peer in to_reach:
                if peer not in outgoing and now >= retry_at[peer]:
                    link = _connect(selector, peer)
                    if isinstance(link, str):
                        why[peer], retry_at[peer] = link, now + RETRY_SECONDS
                    else:
                        outgoing[peer] = link
            for peer, link in list(outgoing.items()):
                if now - link.started > CONNECT_SECONDS:  # a dropped SYN, a silent host: try again
                    _close(selector, link)
                    del outgoing[peer]
                    why[peer], retry_at[peer] = f"no answer in {CONNECT_SECONDS:g} s", now
            for key, events in selector.select(timeout=RETRY_SECONDS / 3):
                if key.fileobj is listener:
                    _accept(selector, listener)
                    continue
                link = key.data
                done = _progress(selector, link, own_hello, by_hello, digest)
                if done is None:
                    continue
                _close(selector, link)
                if link.peer is not None:  # our hello: answered (True), or a reason it was not
                    del outgoing[link.peer]
                    if done is True:
                        to_reach.discard(link.peer)
                        why.pop(link.peer, None)
                    else:
                        why[link.peer], retry_at[link.peer] = done, time.monotonic() + RETRY_SECONDS
                elif isinstance(done, tuple):
                    to_hear.discard(done)
    finally:
        for key in list(selector.get_map().values()):
            key.fileobj.close()
        selector.close()


def _connect(selector, peer):
    """An outgoing `_Link` to `peer`, its connection under way; or why there is none (a host
    name that does not resolve yet, as a peer's does before its machine is up)."""
    host, port = _split(peer[2])
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except OSError as exc:
        return f"cannot resolve {host}: {exc.strerror or exc}"
    sock = socket.socket(family, kind, proto)
    sock.setblocking(False)
    try:
        sock.connect_ex(address)
    except OSError as exc:
        sock.close()
        return exc.strerror or str(exc)
    link = _Link(sock, peer)
    selector.register(sock, selectors.EVENT_WRITE, link)
    return link


def _accept(selector, listener):
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:  # none waiting (BlockingIOError), or one that went away
            return
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, _Link(sock))


def _close(selector, link):
    selector.unregister(link.sock)
    link.sock.close()


def _line(link, data):
    """The link's first line once it has come (None while it has not); b"" at a close before it."""
    link.buffer += data
    if b"\n" in link.buffer:
        return link.buffer.split(b"\n", 1)[0]
    return b"" if not data or len(link.buffer) > MAX_LINE else None


def _progress(selector, link, own_hello, by_hello, digest):
    """Advance one link. Returns None while it goes on. Our hello: True (answered by the peer,
    our "ok" sent) or why not (a string: retry). A peer's hello: the peer (it confirmed our
    answer), or False (not a peer of this cluster, or it went away)."""
    sock = link.sock
    if not link.connected:  # our connect finished: send the hello, then wait for the answer
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            return os.strerror(error).lower()
        link.connected = True
        try:
            sock.sendall(own_hello)
        except OSError as exc:
            return exc.strerror or str(exc)
        selector.modify(sock, selectors.EVENT_READ, link)
        return None
    try:
        data = sock.recv(MAX_LINE)
    except (BlockingIOError, InterruptedError):
        return None
    except OSError as exc:
        return (exc.strerror or str(exc)) if link.peer is not None else False
    line = _line(link, data)
    if line is None:
        return None
    if link.peer is not None:  # the answer must be the peer's own hello, of this cluster
        if line == _hello(digest, *link.peer[:2]).rstrip():
            try:
                sock.sendall(b"ok\n")
            except OSError as exc:
                return exc.strerror or str(exc)
            return True
        if line.startswith(PROTOCOL + b" "):
            words = line.decode(errors="replace").split(" ")
            if words[2:3] != [digest]:
                return "its TF_CONFIG names another cluster"
            return f"the task listening there is {' '.join(words[3:5])}"
        return "it answered, but not as keras-gen" if line else "it closed the connection"
    if link.heard is not None:  # the peer's confirmation of our answer
        return link.heard if line == b"ok" else False
    peer = by_hello.get(line)
    try:
        sock.sendall(own_hello)  # also to a hello of another cluster: its sender learns why
    except OSError:
        return False
    if peer is None:
        return False
    link.heard, link.buffer = peer, link.buffer.split(b"\n", 1)[1]
    if b"\n" in link.buffer:  # the "ok" came with the hello (it cannot, but a line is a line)
        return link.heard if link.buffer.split(b"\n", 1)[0] == b"ok" else False
    return None
