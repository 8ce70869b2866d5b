"""tf.distribute: a step on several replicas computes the one-device step (keras_gen.distribute).

The multi-device checks run in fresh processes (`tests/distributed_steps.py`, the CLI):
TensorFlow fixes its devices when it starts.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from conftest import free_ports, run_cli_here
from keras_gen import distribute, registry
from keras_gen.errors import KerasGenError

HERE = Path(__file__).parent
TOLERANCE = 1e-5
SGD = '{"class_name": "SGD", "config": {"learning_rate": 0.05}}'
TINY_GAN = ["hparams.latent_dim=8", "hparams.generator_widths=[16, 8]", "hparams.discriminator_widths=[8, 16]"]


def _env(**extra):
    env = {**os.environ, "KERAS_GEN_AUTO_PRECISION": "float32", "TF_CPP_MIN_LOG_LEVEL": "3", **extra}
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


# -- one replica: nothing changes -------------------------------------------------------------
def test_with_one_replica_every_helper_returns_what_one_device_computes():
    x = tf.constant(np.random.default_rng(0).normal(size=(5, 3)), tf.float32)
    assert distribute.replicas() == 1 and not distribute.multi_replica()
    assert distribute.global_batch_draw(lambda n: tf.fill([n, 2], 7.0), 5).shape == (5, 2)
    assert distribute.global_mean_part(x, 5) is x
    assert distribute.replica_part(x) is x
    assert [int(v) for v in distribute.batch_position(5)] == [0, 5]  # this replica's rows: all
    assert float(distribute.batch_weight(5)) == 5.0  # a batch mean weighs by its examples
    assert float(distribute.global_std(x)) == float(tf.math.reduce_std(x))
    mean, variance = distribute.global_moments(x, [0])
    np.testing.assert_allclose(mean, np.mean(x.numpy(), 0), rtol=1e-6)
    np.testing.assert_allclose(variance, np.var(x.numpy(), 0), rtol=1e-5)


def test_unknown_strategies_and_bad_tf_config_are_one_line_errors(monkeypatch):
    with pytest.raises(KerasGenError, match="one of mirrored, multiworker"):
        distribute.strategy("tpu")
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(KerasGenError, match="needs TF_CONFIG"):
        distribute.strategy("multiworker")
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(KerasGenError, match="TF_CONFIG must be JSON"):
        distribute.strategy("multiworker")
    # Valid JSON of another shape: tracebacks from is_chief before (a list has no .get, a
    # null task, an index "x"); an index outside the cluster was not checked at all.
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    for config in ([], {"task": None, "cluster": cluster}, {"cluster": cluster, "task": {"type": "worker",
                                                                                          "index": "x"}},
                   {"cluster": cluster, "task": {"type": "worker", "index": 2}},
                   {"cluster": cluster, "task": {"type": "ps", "index": 0}}):
        monkeypatch.setenv("TF_CONFIG", json.dumps(config))
        for call in (distribute.is_chief, lambda: distribute.strategy("multiworker")):
            with pytest.raises(KerasGenError, match="TF_CONFIG must be JSON .*(no cluster|names no task)"):
                call()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": "worker", "index": "1"}}))
    assert not distribute.is_chief()  # "1" is read as 1, as TensorFlow's resolver reads it


def test_the_chief_is_worker_0_or_the_chief_task(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 0))
    assert distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 1))
    assert not distribute.is_chief()
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"chief": ["a:1"], "worker": ["b:1"]},
                                                "task": {"type": "worker", "index": 0}}))
    assert not distribute.is_chief()


# -- several replicas ------------------------------------------------------------------------------
# One test, not three sharing a module fixture: pytest-xdist may hand tests of one module to
# different workers, and each would run the minutes of steps again (its `xdist_group` marks do
# not group under pytest 9.2, whose node ids no longer read the suffix xdist 3.8 writes).
def test_a_mirrored_step_on_two_devices_equals_the_one_device_step_for_every_model(tmp_path):
    """DCGAN with a gradient penalty, DRAGAN + DiffAugment + instance noise, dropout, weight
    clipping, conditional GANs, BigGAN (EMA, orthogonality, synchronised batch norm), the
    autoregressive and the domain-adaptation models: weights after the step and the logged
    figures agree within 1e-5, also for an uneven global batch (4 + 3 examples). Equal weights
    also mean the replicas drew different noise: with the same noise on both, the step would
    differ. Every registered model is among the cases, and a replay buffer is refused."""
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, str(HERE / "distributed_steps.py"), "mirrored", str(out)],
                          env=_env(), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(out.read_text())
    for name, result in results["cases"].items():
        assert result["replicas"] == 2, name
        assert result["metrics"], name
        assert result["max_weight_change"] > 1e-4, f"{name}: the step did not train"
        assert result["max_weight_difference"] < TOLERANCE, (name, result)
        assert result["max_relative_metric_difference"] < TOLERANCE, (name, result)
        single_watch, replicated_watch = result["loss_watch"]
        assert single_watch == replicated_watch and single_watch[0] is None and single_watch[1] >= 1, (name, result)
    covered = {result["model"] for result in results["cases"].values()}
    assert set(registry.MODELS) - covered == set(), "add the new models to tests/distributed_steps.py"
    assert "replay_buffer does not work under a multi-replica" in results["replay_buffer"]


def _train_command(out, *extra):
    # With a gradient penalty: its second-order gradient and its per-replica interpolates
    # are where a multi-worker step most easily parts from one device's.
    return [sys.executable, "-m", "keras_gen.cli", "train", "dcgan", "--data", "digits", "--epochs", "1",
            "--batch-size", "256", *[arg for setting in TINY_GAN for arg in ("--set", setting)],
            "--set", f"compile.optimizer={SGD}", "--set", "compile.penalty=gradient_penalty",
            "--out", str(out), "--quiet", *extra]


def _weights(path):
    model = keras.models.load_model(path, safe_mode=True)
    return model.get_weights()


def test_keras_gen_train_strategy_mirrored_and_multiworker_match_one_device(tmp_path):
    """The CLI on 2 logical CPUs (mirrored) and as 2 worker processes on 127.0.0.1
    (MultiWorkerMirroredStrategy): the run folder is the chief's alone, run.json names the
    strategy and replicas, and the trained weights (DCGAN with a gradient penalty, 5 SGD
    steps) and logged figures match a one-device run. (A separate test of one multi-worker
    step through tests/distributed_steps.py duplicated this one's multi-worker half.)"""
    single = run_cli_here(*_train_command(tmp_path / "single")[3:])  # one device: no process of its own
    assert single.returncode == 0, single.stderr[-3000:]
    mirrored = subprocess.run(_train_command(tmp_path / "mirrored", "--strategy", "mirrored"),
                              env=_env(KERAS_GEN_CPU_REPLICAS="2"), capture_output=True, text=True, timeout=600)
    assert mirrored.returncode == 0, mirrored.stderr[-3000:]
    ports = free_ports(2)
    workers = [subprocess.Popen(_train_command(tmp_path / f"multi{i}", "--strategy", "multiworker"),
                                env=_env(TF_CONFIG=_tf_config(ports, i)), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = []
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err[-3000:]
        outs.append(out)
    assert not (tmp_path / "multi1").exists(), "a worker other than the chief wrote a run folder"
    assert f"run folder: {tmp_path / 'multi0'} (" in outs[0]
    assert "run folder: none on this worker" in outs[1]  # it named multi1, which no one wrote

    expected = _weights(tmp_path / "single" / "model.keras")
    for run, replicas in (("mirrored", 2), ("multi0", 2)):
        info = json.loads((tmp_path / run / "run.json").read_text())
        assert info["strategy"]["replicas"] == replicas and info["steps_per_execution"] == 1
        got = _weights(tmp_path / run / "model.keras")
        assert max(float(np.max(np.abs(a - b), initial=0)) for a, b in zip(expected, got)) < 1e-4, run
        logged, reference = info["history"], json.loads((tmp_path / "single" / "run.json").read_text())["history"]
        assert logged.keys() == reference.keys() and "penalty" in logged, run
        for key in ("d_loss", "g_loss", "penalty"):
            assert abs(logged[key][0] - reference[key][0]) <= 1e-4 * max(1.0, abs(reference[key][0])), (run, key)
    assert json.loads((tmp_path / "single" / "run.json").read_text())["strategy"] == {"name": None, "replicas": 1}


def test_a_multiworker_task_waits_for_its_peers_killably_and_sigterm_still_stops_it_once_started(tmp_path):
    """TensorFlow's multi-worker start blocks, holding the interpreter, until every task has
    come, and its coordination service then catches SIGTERM for good: a worker whose chief
    never came could not be stopped by `kill` or Ctrl-C, nor a started one by `kill`. Now a
    waiting task says whom it waits for and ends on SIGTERM (its run folder removed), and a
    started one dies of it."""
    import selectors
    import signal

    ports = free_ports(2)
    # The chief, which makes the run folder before the strategy: SIGTERM while it waits removes it.
    waiting = subprocess.Popen(_train_command(tmp_path / "alone", "--strategy", "multiworker"),
                               env=_env(TF_CONFIG=_tf_config(ports, 0)), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        # The first notice comes after 5 s of waiting; before, there was none (and no end).
        with selectors.DefaultSelector() as ready:
            ready.register(waiting.stderr, selectors.EVENT_READ)
            line = waiting.stderr.readline() if ready.select(timeout=90) else "(nothing in 90 s)"
        assert line.strip() == (f"keras-gen: worker 0 (127.0.0.1:{ports[0]}) waiting for worker 1 "
                                f"(127.0.0.1:{ports[1]}) [connection refused]"), line
        assert (tmp_path / "alone").is_dir()
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(timeout=10) == 143
        assert waiting.stderr.read().strip() == "keras-gen: terminated (SIGTERM) while waiting for the cluster"
    finally:
        waiting.kill()
        waiting.communicate()
    assert not (tmp_path / "alone").exists()

    started = subprocess.run(
        [sys.executable, "-c", "import os, signal, time\n"
         "from keras_gen import distribute\n"
         "distribute.strategy('multiworker')\n"
         "os.kill(os.getpid(), signal.SIGTERM)\n"
         "time.sleep(10)\n"
         "print('SIGTERM was caught')"],
        env=_env(TF_CONFIG=_tf_config(free_ports(1), 0)), capture_output=True, text=True, timeout=120)
    assert started.returncode == -signal.SIGTERM, (started.stdout, started.stderr[-2000:])


def test_multiworker_resume_is_refused_with_one_line(tmp_path, monkeypatch):
    from keras_gen import training

    monkeypatch.setenv("TF_CONFIG", _tf_config([1, 2], 0))
    with pytest.raises(KerasGenError, match="not supported yet"):
        training.train(None, tmp_path, resume=True, strategy="multiworker")
    with pytest.raises(KerasGenError, match="strategy must be one of"):
        training.train(None, tmp_path, strategy="gpu")


def test_a_resumed_mirrored_run_keeps_its_replicas_and_ends_as_the_uninterrupted_one(tmp_path):
    """Reading a run's checkpoint starts TensorFlow, after which the CPU's logical devices can
    no longer be made: a resumed 2-replica run went on with 1 replica, silently. The run is
    cut back to its state after epoch 1 of 2 (what a kill then leaves) and resumed in a
    fresh process."""
    import shutil

    env = _env(KERAS_GEN_CPU_REPLICAS="2")
    command = _train_command(tmp_path / "whole", "--strategy", "mirrored")
    command[command.index("--epochs") + 1] = "2"
    whole = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr[-3000:]
    cut = tmp_path / "cut"
    shutil.copytree(tmp_path / "whole", cut)
    for path in (cut / "run.json", cut / "model.keras", *cut.glob("checkpoints/epoch_002.*"), *cut.glob("samples/*2*")):
        path.unlink()
    resumed = subprocess.run([sys.executable, "-m", "keras_gen.cli", "train", "--resume", str(cut), "--strategy",
                              "mirrored", "--quiet"], env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((cut / "run.json").read_text())["strategy"] == {"name": "mirrored", "replicas": 2}
    for a, b in zip(_weights(tmp_path / "whole" / "model.keras"), _weights(cut / "model.keras")):
        np.testing.assert_array_equal(a, b)


def test_every_batch_must_give_each_replica_an_image():
    """With 2 replicas a last test batch of 1 image left one replica none: the evaluation after
    the first epoch failed with a 50-line TensorFlow error and run.json was never written. Now a
    one-line error before training, with a batch size that works."""
    from keras_gen import training
    from keras_gen.errors import KerasGenError

    training.check_replica_batches([("digits", "test", None)], 179, 1)  # one device: any batch
    with pytest.raises(KerasGenError, match=r"the digits test split \(359 images\) ends in a batch of 1 at batch "
                                            r"size 179, fewer than the 2 replicas.* \(e\.g\. 178\)"):
        training.check_replica_batches([("digits", "test", None)], 179, 2)
    training.check_replica_batches([("digits", "test", None)], 178, 2)  # 359 = 2 x 178 + 3
    with pytest.raises(KerasGenError, match="a batch of 1 image cannot give each of the 2 replicas one"):
        training.check_replica_batches([("digits", "test", None)], 1, 2)
