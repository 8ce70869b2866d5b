"""The cluster's tasks gather in Python before TensorFlow starts (keras_gen.rendezvous)."""
import socket
import threading
import time

import pytest

from conftest import free_ports
from keras_gen import rendezvous
from keras_gen.errors import KerasGenError


def _config(cluster, kind, index):
    return {"cluster": cluster, "task": {"type": kind, "index": index}}


def _gather_all(cluster, tasks, delays, timeout=30.0):
    """Run `gather` for each task in a thread of its own, each starting after its delay;
    `{task: None or the exception}`."""
    results = {}

    def run(task, delay):
        time.sleep(delay)
        try:
            rendezvous.gather(_config(cluster, *task), timeout=timeout, say=lambda line: None)
            results[task] = None
        except Exception as exc:  # noqa: BLE001 - reported to the test
            results[task] = exc

    threads = [threading.Thread(target=run, args=(task, delay)) for task, delay in zip(tasks, delays)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 10)
    return results


def test_a_chief_and_two_workers_gather_whatever_order_they_start_in():
    ports = free_ports(3)
    cluster = {"chief": [f"127.0.0.1:{ports[0]}"], "worker": [f"127.0.0.1:{p}" for p in ports[1:]]}
    tasks = [("chief", 0), ("worker", 0), ("worker", 1)]
    # The chief last, then a worker last: each waits for the others' listeners, retrying.
    for delays in ([1.0, 0.0, 0.2], [0.0, 0.1, 1.2]):
        assert _gather_all(cluster, tasks, delays) == {task: None for task in tasks}
    # The ports are free again for TensorFlow's servers once the tasks have gathered.
    for port in ports:
        with socket.create_server(("", port)):
            pass


def test_a_task_alone_in_its_cluster_does_not_listen():
    port = free_ports(1)[0]
    with socket.create_server(("127.0.0.1", port)):  # its port is busy: it is never bound
        rendezvous.gather(_config({"worker": [f"127.0.0.1:{port}"]}, "worker", 0), timeout=1)


def test_a_missing_task_is_named_after_the_timeout_and_the_wait_is_reported():
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    said = []
    start = time.monotonic()
    with pytest.raises(KerasGenError, match=rf"did not gather within 1\.5 s: no hello from worker 0 "
                                            rf"\(127\.0\.0\.1:{ports[0]}\); start keras-gen on every task"):
        rendezvous.gather(_config(cluster, "worker", 1), timeout=1.5, say=said.append)
    assert time.monotonic() - start < 5
    # Notices begin after FIRST_NOTICE_SECONDS (5 s): none in 1.5 s.
    assert said == []


def test_the_wait_is_reported_with_the_missing_task(monkeypatch):
    monkeypatch.setattr(rendezvous, "FIRST_NOTICE_SECONDS", 0.2)
    ports = free_ports(2)
    said = []
    with pytest.raises(KerasGenError):
        rendezvous.gather(_config({"worker": [f"127.0.0.1:{p}" for p in ports]}, "worker", 0), timeout=0.8,
                          say=said.append)
    assert said == [f"keras-gen: worker 0 (127.0.0.1:{ports[0]}) waiting for worker 1 (127.0.0.1:{ports[1]})"]


def test_a_port_that_answers_something_else_is_not_taken_for_the_peer():
    ports = free_ports(1)
    with socket.create_server(("127.0.0.1", 0)) as foreign:
        foreign_port = foreign.getsockname()[1]
        stop = threading.Event()

        def answer_garbage():
            foreign.settimeout(0.1)
            while not stop.is_set():
                try:
                    conn, _ = foreign.accept()
                except OSError:
                    continue
                with conn:
                    conn.sendall(b"HTTP/1.0 400 Bad Request\n")

        thread = threading.Thread(target=answer_garbage)
        thread.start()
        try:
            cluster = {"worker": [f"127.0.0.1:{ports[0]}", f"127.0.0.1:{foreign_port}"]}
            with pytest.raises(KerasGenError, match=rf"no hello from worker 1 \(127\.0\.0\.1:{foreign_port}\)"):
                rendezvous.gather(_config(cluster, "worker", 0), timeout=1.0, say=lambda line: None)
        finally:
            stop.set()
            thread.join()


def test_a_busy_own_port_and_a_bad_timeout_are_one_line_errors(monkeypatch):
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        other = free_ports(1)[0]
        with pytest.raises(KerasGenError, match=rf"cannot listen on this task's TF_CONFIG address 127\.0\.0\.1:{port} "
                                                r"\(worker 0 .*\): Address already in use"):
            rendezvous.gather(_config({"worker": [f"127.0.0.1:{port}", f"127.0.0.1:{other}"]}, "worker", 0),
                              timeout=1)
    for bad in ("soon", "0", "-3", "inf", "nan"):
        monkeypatch.setenv("KERAS_GEN_RENDEZVOUS_TIMEOUT", bad)
        with pytest.raises(KerasGenError, match="KERAS_GEN_RENDEZVOUS_TIMEOUT must be a positive number"):
            rendezvous.timeout_from_environment()
    monkeypatch.setenv("KERAS_GEN_RENDEZVOUS_TIMEOUT", "2.5")
    assert rendezvous.timeout_from_environment() == 2.5
