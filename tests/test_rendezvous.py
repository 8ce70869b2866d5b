"""The cluster's tasks gather in Python before TensorFlow starts (keras_gen.rendezvous)."""
import socket
import threading
import time

import pytest

from conftest import free_ports
from keras_gen import rendezvous
from keras_gen.errors import KerasGenError


@pytest.fixture(autouse=True)
def _nothing_gathered_yet(monkeypatch):
    monkeypatch.setattr(rendezvous, "_gathered", set())


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
        rendezvous._gathered.clear()  # the same cluster again, as if in new processes
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
                                            rf"\(127\.0\.0\.1:{ports[0]}\) \[connection refused\]; start keras-gen "
                                            "on every task of TF_CONFIG, with the same cluster$"):
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
    assert len(said) == 1 and said[0].startswith(
        f"keras-gen: worker 0 (127.0.0.1:{ports[0]}) waiting for worker 1 (127.0.0.1:{ports[1]})"), said


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
            with pytest.raises(KerasGenError, match=rf"no hello from worker 1 \(127\.0\.0\.1:{foreign_port}\) "
                                                    r"\[it answered, but not as keras-gen\]"):
                rendezvous.gather(_config(cluster, "worker", 0), timeout=3.0, say=lambda line: None)
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


def test_tasks_whose_tf_configs_name_other_clusters_do_not_gather():
    """Each hello carries a digest of the chief and worker lists: a task whose TF_CONFIG names a
    third worker that the others' do not is refused by both, and they by it."""
    ports = free_ports(3)
    pair = {"worker": [f"127.0.0.1:{p}" for p in ports[:2]]}
    triple = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    results = {}

    def run(cluster, index):
        try:
            rendezvous.gather(_config(cluster, "worker", index), timeout=3.0, say=lambda line: None)
            results[index] = None
        except KerasGenError as exc:
            results[index] = str(exc)

    threads = [threading.Thread(target=run, args=(pair, 0)), threading.Thread(target=run, args=(triple, 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert f"no hello from worker 1 (127.0.0.1:{ports[1]}) [its TF_CONFIG names another cluster]" in results[0]
    assert f"worker 0 (127.0.0.1:{ports[0]}) [its TF_CONFIG names another cluster]" in results[1]


def test_a_peer_that_quits_before_confirming_is_not_counted():
    """A task counts a peer as heard only on its "ok": one that sends its hello, reads the
    answer and goes away (timed out, interrupted) would otherwise let the others start
    TensorFlow without it."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    digest = rendezvous.cluster_digest({"cluster": cluster})
    stop = threading.Event()

    def quitter():  # worker 1: listens and answers like a peer, but never confirms ours
        with socket.create_server(("127.0.0.1", ports[1])) as server:
            server.settimeout(0.1)
            while not stop.is_set():
                try:
                    with socket.create_connection(("127.0.0.1", ports[0]), timeout=1) as out:
                        out.sendall(rendezvous._hello(digest, "worker", 1))
                        out.recv(200)  # the answer; then away, without "ok"
                except OSError:
                    pass
                try:
                    conn, _ = server.accept()
                except OSError:
                    continue
                with conn:
                    conn.recv(200)
                    conn.sendall(rendezvous._hello(digest, "worker", 1))
                    conn.recv(200)
                time.sleep(0.1)

    thread = threading.Thread(target=quitter)
    thread.start()
    try:
        with pytest.raises(KerasGenError, match=rf"no hello from worker 1 \(127\.0\.0\.1:{ports[1]}\)"):
            rendezvous.gather(_config(cluster, "worker", 0), timeout=1.5, say=lambda line: None)
    finally:
        stop.set()
        thread.join()


def test_an_unresolvable_peer_is_retried_and_named_and_an_evaluator_takes_no_part():
    port = free_ports(1)[0]
    cluster = {"worker": [f"127.0.0.1:{port}", "no-such-host.invalid:2222"], "evaluator": ["127.0.0.1:1"]}
    with pytest.raises(KerasGenError, match=r"no hello from worker 1 \(no-such-host\.invalid:2222\) \[cannot "
                                            r"resolve no-such-host\.invalid: "):
        rendezvous.gather(_config(cluster, "worker", 0), timeout=1.0, say=lambda line: None)
    rendezvous.gather(_config(cluster, "evaluator", 0), timeout=1.0)  # not in the all-reduces: returns


def test_a_cluster_gathered_once_is_not_gathered_again_in_the_process():
    """TensorFlow's server holds the task's port after the first strategy: a second
    `strategy("multiworker")` in the process would find it busy."""
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    assert _gather_all(cluster, [("worker", 0), ("worker", 1)], [0.0, 0.0]) == {("worker", 0): None,
                                                                               ("worker", 1): None}
    with socket.create_server(("127.0.0.1", ports[0])):  # as TensorFlow's server would hold it
        rendezvous.gather(_config(cluster, "worker", 0), timeout=0.5)
