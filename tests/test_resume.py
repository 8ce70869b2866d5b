"""Resume and faults: runs killed with SIGKILL and resumed end bit-identical to the
uninterrupted run; SIGINT stops with a usable checkpoint; a NaN loss keeps the last good
checkpoint; a failed run leaves no folder; the data order is a function of (seed, epoch)."""
import importlib.util
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from keras_gen import resume, training, zoo
from keras_gen.errors import KerasGenError
from keras_gen.recipe import Recipe

from conftest import averaging_adam, run_cli_here

_spec = importlib.util.spec_from_file_location("resume_kill", Path(__file__).parents[1] / "bench" / "resume_kill.py")
resume_kill = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(resume_kill)

TINY_GAN = resume_kill.TINY_DCGAN


def test_runs_killed_at_random_moments_resume_bit_identical(tmp_path):
    """Four SIGKILLs: halfway through writing epoch 2's checkpoint, after epoch 2's state is
    written but before its rename, after model.keras's rename (before run.json), and at a
    random time during epoch 2's or 3's steps. Each run, resumed in this process, equals the
    uninterrupted one run in its own: weights, both optimizers, every sample grid's bytes,
    run.json but for the seconds."""
    recipe = resume_kill.tiny_recipe(epochs=3, batch_size=64)  # digits: 22 steps an epoch
    # Writes: 1 recipe.json; per epoch png, .keras, .json (2-4, 5-7, 8-10); 11 model.keras, 12 run.json.
    modes = {"torn": "write:6:torn", "unrenamed": "write:7:before-rename", "final": "write:11:after-rename"}
    procs = {name: resume_kill.child(tmp_path / name, recipe, mode) for name, mode in modes.items()}
    procs["reference"] = resume_kill.child(tmp_path / "reference", recipe, "run")
    random_kill = resume_kill.child(tmp_path / "random", recipe, "run")
    first = tmp_path / "random" / "checkpoints" / "epoch_001.json"
    while not first.exists() and random_kill.poll() is None:
        time.sleep(0.01)
    time.sleep(np.random.default_rng().uniform(0, 1.0))
    random_kill.send_signal(signal.SIGKILL)
    for name, proc in [*procs.items(), ("random", random_kill)]:
        code, _, stderr = resume_kill.finish(proc)
        assert code == (0 if name == "reference" else -signal.SIGKILL) or (name == "random" and code == 0), stderr
    assert resume_kill.temporaries(tmp_path / "torn") and resume_kill.temporaries(tmp_path / "unrenamed")
    assert (tmp_path / "final" / "model.keras").is_file() and not (tmp_path / "final" / "run.json").exists()
    # The state of epoch 2 never got its name: that checkpoint is incomplete; epoch 1 is the newest.
    assert resume.complete_checkpoints(tmp_path / "unrenamed" / "checkpoints") == [1]

    for name in [*modes, "random"]:  # resumed in this process: nothing of the killed one is needed
        if not (tmp_path / name / "run.json").exists():
            training.train(recipe, tmp_path / name, grid_size=16, verbose=0, resume=True)
    reference = resume_kill.digest(tmp_path / "reference")
    for name in [*modes, "random"]:
        assert not resume_kill.temporaries(tmp_path / name), name
        assert resume_kill.differences(reference, resume_kill.digest(tmp_path / name)) == [], name
    assert len(reference) == 5  # the model, run.json and three sample grids were compared
    for name in ["reference", *modes, "random"]:  # each epoch once in TensorBoard, as uninterrupted
        assert tensorboard_steps(tmp_path / name / "logs" / "train", "epoch_loss") == [0, 1, 2], name
    saved = json.loads((tmp_path / "torn" / "run.json").read_text())
    assert len(saved["history"]["g_loss"]) == 3


def tensorboard_steps(folder, tag):
    """The steps of `tag`'s summaries in the event files under `folder`, in file order."""
    import tensorflow as tf

    return [event.step for path in sorted(Path(folder).glob("events.out.tfevents.*"))
            for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value if value.tag == tag]


def test_resuming_drops_the_tensorboard_summaries_of_epochs_trained_again(tmp_path):
    import tensorflow as tf

    with tf.summary.create_file_writer(str(tmp_path / "train")).as_default():
        for step in range(4):
            tf.summary.scalar("epoch_loss", float(step), step=step)
    (path,) = (tmp_path / "train").glob("events.out.tfevents.*")
    whole = path.read_bytes()
    resume.prune_tensorboard(tmp_path, 5)  # nothing to drop: the file is left as it is
    assert path.read_bytes() == whole
    with open(path, "ab") as f:  # a record torn by a kill
        f.write(whole[-30:-10])
    resume.prune_tensorboard(tmp_path, 2)
    assert tensorboard_steps(tmp_path / "train", "epoch_loss") == [0, 1]
    assert list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator())  # readable to the end
    assert sorted(p.name for p in (tmp_path / "train").iterdir()) == [path.name]  # no temporary left


def test_sigint_stops_with_one_line_and_a_usable_checkpoint(tmp_path):
    """Ctrl-C during a step (the CLI) and during a checkpoint write (which Keras' writer would
    swallow): one line, the newest checkpoint complete, and --resume finishes the run."""
    recipe = resume_kill.tiny_recipe(epochs=3, batch_size=64)
    in_write = resume_kill.child(tmp_path / "in-write", recipe, "write:6:sigint")  # epoch 2's .keras
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    sets = [f"--set=hparams.{k}={json.dumps(v)}" for k, v in TINY_GAN.items()]
    cli = subprocess.Popen(
        [sys.executable, "-m", "keras_gen.cli", "train", "dcgan", "--data", "digits", "--epochs", "3", "--batch-size",
         "64", "--precision", "float32", "--quiet", "--out", str(tmp_path / "cli"), *sets],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    while not (tmp_path / "cli" / "checkpoints" / "epoch_001.json").exists() and cli.poll() is None:
        time.sleep(0.01)
    cli.send_signal(signal.SIGINT)
    _, stderr = cli.communicate(timeout=300)
    run = tmp_path / "cli"
    assert cli.returncode == 130, stderr
    line = stderr.strip()
    # The signal lands in epoch 2's steps, or still in epoch 1's end, just after its checkpoint.
    assert "\n" not in line and re.match(r"keras-gen: interrupted (in epoch 2|after epoch 1) of 3; the newest "
                                         r"checkpoint is \S+epoch_001.keras; resume with keras-gen train --resume ",
                                         line), line
    assert line.endswith(f"; resume with keras-gen train --resume {run}")
    assert resume.complete_checkpoints(run / "checkpoints") == [1]

    code, _, stderr = resume_kill.finish(in_write)
    assert code != 0 and "interrupted after epoch 2 of 3; the newest checkpoint is " in stderr, stderr[-2000:]
    assert resume.complete_checkpoints(tmp_path / "in-write" / "checkpoints") == [1, 2]
    assert not resume_kill.temporaries(tmp_path / "in-write")

    result = run_cli_here("train", "--resume", run, "--quiet")
    assert result.returncode == 0, result.stderr
    saved = json.loads((run / "run.json").read_text())
    assert len(saved["history"]["loss"]) == 3 and saved["recipe"]["epochs"] == 3
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"epoch_00{i}.png" for i in (1, 2, 3)]


@pytest.mark.parametrize("steps_per_execution, where", [
    (1, "is nan at epoch 2, step 4 of 22"),  # one step per call: the very step and its value
    # The run's default, 11 steps per call: still the very step (the counters); the value Keras
    # logs is the group's last step's, so none is quoted.
    (None, "is not finite at epoch 2, step 4 of 22"),
])
def test_a_non_finite_loss_stops_at_its_step_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch,
                                                                               steps_per_execution, where):
    import dataclasses

    import keras
    import tensorflow as tf

    build = training.build_model
    bad_step = 22 + 4  # epoch 2, step 4 (22 steps an epoch)

    def nan_later(recipe, image_shape, steps_per_epoch=None):  # the generator loss turns NaN at one step
        model = build(recipe, image_shape, steps_per_epoch)
        pair, optimizer = model.loss_pair, model.g_optimizer

        def generator_loss(logits):
            loss = pair.generator(logits)
            return tf.where(optimizer.iterations + 1 >= bad_step, tf.constant(float("nan")), loss)

        model.loss_pair = dataclasses.replace(pair, generator=generator_loss)
        return model

    monkeypatch.setattr(training, "build_model", nan_later)
    compile_args = {} if steps_per_execution is None else {"steps_per_execution": steps_per_execution}
    recipe = Recipe("dcgan", data="digits", epochs=3, batch_size=64, hparams=TINY_GAN, compile=compile_args)
    run = tmp_path / "run"
    with pytest.raises(resume.NonFiniteLoss, match=rf"the loss {where}: training stopped; "
                       r"model.keras is epoch 1, the last good checkpoint") as caught:
        training.train(recipe, run, grid_size=4, verbose=0)
    assert "\n" not in str(caught.value) and (caught.value.epoch, caught.value.step) == (2, 4)
    kept = keras.models.load_model(run / "model.keras")
    good = keras.models.load_model(run / "checkpoints" / "epoch_001.keras")
    for a, b in zip(kept.get_weights(), good.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert all(np.isfinite(w).all() for w in kept.get_weights())
    saved = json.loads((run / "run.json").read_text())
    assert saved["kept_epoch"] == 1 and where in saved["stopped"] and len(saved["history"]["loss"]) == 1
    assert saved["strategy"] == {"name": None, "replicas": 1}  # as a finished run's run.json says
    assert not (run / "samples" / "epoch_002.png").exists()


def test_a_failed_run_leaves_no_folder(tmp_path):
    import keras

    with pytest.raises(KerasGenError, match="unknown argument"):
        training.train(Recipe("dcgan", data="digits", epochs=1, hparams=TINY_GAN, compile={"no_such": 1}),
                       tmp_path / "runs" / "bad", verbose=0)
    assert not (tmp_path / "runs").exists()

    class Crash(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise RuntimeError("the first epoch failed")

    (tmp_path / "given").mkdir()  # a folder that existed stays, emptied again
    with pytest.raises(RuntimeError, match="first epoch"):
        training.train(Recipe("dcgan", data="digits", epochs=1, batch_size=256, hparams=TINY_GAN), tmp_path / "given",
                       verbose=0, callbacks=[Crash()])
    assert list((tmp_path / "given").iterdir()) == []
    with pytest.raises(KerasGenError, match="BackupAndRestore"):
        training.train(Recipe("dcgan", data="digits", hparams=TINY_GAN), tmp_path / "b", verbose=0,
                       callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))])


def test_resume_refuses_another_recipe_a_finished_run_and_other_folders(tmp_path):
    recipe = Recipe("dcgan", data="digits", epochs=2, batch_size=64, hparams=TINY_GAN)
    run = tmp_path / "run"
    run.mkdir()
    (run / "recipe.json").write_text(recipe.to_json())
    (run / ".samples.tmp-x.png").write_text("left by a killed writer")
    with pytest.raises(KerasGenError, match=r"another recipe \(epochs 2 there, 5 asked\)"):
        resume.prepare(run, Recipe("dcgan", data="digits", epochs=5, batch_size=64, hparams=TINY_GAN))
    assert resume.prepare(run) == (recipe, 0, None) and not (run / ".samples.tmp-x.png").exists()
    (run / "run.json").write_text("{}")
    with pytest.raises(KerasGenError, match="has finished"):
        resume.prepare(run)
    with pytest.raises(KerasGenError, match="no run folder"):
        resume.prepare(tmp_path / "nothing")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(KerasGenError, match="not a keras-gen run folder"):
        resume.prepare(tmp_path / "other", recipe)
    # A zoo entry (a recipe.json beside weights, a card) is no run to start again in place.
    entry = tmp_path / "entry"
    shutil.copytree(zoo.entry_dir("dcgan-mnist5k"), entry)
    files = sorted(entry.iterdir())
    with pytest.raises(KerasGenError, match=r"holds README.md, config.json, .* besides a run's files and no "
                                            r"checkpoint: not a keras-gen run folder"):
        resume.prepare(entry)
    assert sorted(entry.iterdir()) == files
    result = run_cli_here("train", "--resume", run, "--epochs", "4")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    (run / "run.json").unlink()
    result = run_cli_here("train", "--resume", run, "--epochs", "4")
    assert result.returncode == 1 and "another recipe (epochs 2 there, 4 asked)" in result.stderr
    # The run's own model name changes nothing; another model's is named as the mistake (not
    # that model's own complaint, e.g. adda's missing --target).
    result = run_cli_here("train", "dcgan", "--resume", run, "--epochs", "4")
    assert result.returncode == 1 and "another recipe (epochs 2 there, 4 asked)" in result.stderr
    result = run_cli_here("train", "adda", "--resume", run)
    assert result.returncode == 1 and result.stderr.strip() == (
        f"keras-gen: error: the run in {str(run)!r} trains dcgan, not adda; --resume continues it with its own "
        "recipe: leave out the model name")


def test_every_seed_generator_is_found_and_restored():
    import keras

    from keras_gen.models import DCGAN

    generator = keras.Sequential([keras.Input((8,)), keras.layers.Dense(64), keras.layers.Dropout(0.5, seed=3),
                                  keras.layers.Reshape((8, 8, 1))])
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), discriminator_widths=(8, 16),
                  seed=1, generator=generator)
    model.compile(replay_buffer=8)
    paths = [path for path, _ in resume.seed_generators(model)]
    # The model's two streams, the replay buffer's and the Dropout's inside the generator:
    # as many as Keras counts among the model's variables, each once.
    assert paths[0] == "eval_seed_generator" and paths[-1] == "seed_generator" and "replay.seed_generator" in paths
    assert any(p.startswith("generator.") and p.endswith(".seed_generator") for p in paths)
    assert len(paths) == len(set(paths)) == sum("seed_generator_state" in v.path for v in model.variables) == 4
    before = resume.noise_state(model)
    for _, sg in resume.seed_generators(model):
        keras.random.normal((2,), seed=sg)
    assert resume.noise_state(model) != before
    resume.restore_noise_state(model, before)
    assert resume.noise_state(model) == before
    with pytest.raises(KerasGenError, match="another model"):
        resume.restore_noise_state(model, {"seed_generator": [1, 0]})
    # A run that trained in bfloat16 is not continued in float32 ("auto" differs by CPU).
    with pytest.raises(KerasGenError, match="KERAS_GEN_AUTO_PRECISION=mixed_bfloat16"):
        resume.restore(model, "nowhere", 1, {"precision": "mixed_bfloat16"})


def test_the_data_order_is_a_function_of_the_seed_and_the_epoch():
    import tensorflow as tf

    def batches(**kwargs):
        ds = training.make_dataset("digits", "train", 256, seed=4, **kwargs)
        return [labels.numpy().tolist() for _, labels in ds]

    three = batches(epochs=3)
    assert len(three) == 3 * (1438 // 256)
    tf.random.set_seed(123)  # TensorFlow's global seed plays no part
    assert batches(epochs=2, first_epoch=1) == three[5:]
    assert three[:5] != three[5:10] != three[10:]
    assert batches(epochs=1) == three[:5]


def test_a_resumed_run_gives_its_own_callbacks_their_state_back(tmp_path):
    """EarlyStopping(patience=1) that never sees an improvement after epoch 1 stops after
    epoch 2. A run that dies after epoch 1 and is resumed stops there too: its patience so
    far (`best`, `wait`) comes back from the checkpoint instead of starting afresh (which
    would count epoch 2 as an improvement and train a third epoch)."""
    import keras

    recipe = Recipe("dcgan", data="digits", epochs=4, batch_size=256, hparams=TINY_GAN)

    def early_stopping():
        return keras.callbacks.EarlyStopping(monitor="loss", patience=1, min_delta=1e9, mode="min")

    class DieInEpoch2(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise RuntimeError("killed in epoch 2")

    _, whole = training.train(recipe, tmp_path / "whole", verbose=0, callbacks=[early_stopping()])
    assert len(whole["history"]["loss"]) == 2
    with pytest.raises(RuntimeError, match="killed"):
        training.train(recipe, tmp_path / "run", verbose=0, callbacks=[early_stopping(), DieInEpoch2()])
    saved = resume.read_state(tmp_path / "run" / "checkpoints", 1)["callbacks"][0]
    assert saved["class"] == "EarlyStopping" and saved["state"]["wait"] == 0 and np.isfinite(saved["state"]["best"])
    _, resumed = training.train(None, tmp_path / "run", verbose=0, resume=True, callbacks=[early_stopping()])
    assert len(resumed["history"]["loss"]) == 2
    assert resumed["history"]["loss"] == whole["history"]["loss"]


def test_a_plain_fit_with_keras_backup_and_restore_continues_an_interrupted_keras_gen_model(tmp_path):
    """`keras.callbacks.BackupAndRestore` works with a keras-gen model in the user's own `fit`
    (it is refused only inside `training.train`, which resumes exactly): a fit stopped after
    its first epoch, run again, continues from the backup at epoch 2 with the trained weights."""
    import keras

    from keras_gen.models import DCGAN

    class StopAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                raise KeyboardInterrupt  # what a user's Ctrl-C does inside fit

    images = np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1), dtype=np.uint8)
    model = DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), seed=0)
    model.compile()
    backup = keras.callbacks.BackupAndRestore(str(tmp_path / "backup"))
    with pytest.raises(KeyboardInterrupt):
        model.fit(images, batch_size=16, epochs=3, verbose=0, callbacks=[backup, StopAfterFirstEpoch()])
    after_first = [w.copy() for w in model.get_weights()]

    again = DCGAN(image_shape=(8, 8, 1), latent_dim=8, generator_widths=(16, 8), seed=1)
    again.compile()
    epochs_run = []
    record = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: epochs_run.append(epoch))
    restored = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: [np.testing.assert_array_equal(a, b)
                                     for a, b in zip(again.get_weights(), after_first)])
    again.fit(images, batch_size=16, epochs=3, verbose=0,
              callbacks=[keras.callbacks.BackupAndRestore(str(tmp_path / "backup")), restored, record])
    assert epochs_run == [1, 2]  # epoch 0 was done before the interruption
    assert int(keras.ops.convert_to_numpy(again.g_optimizer.iterations)) == 3 * 2


# Families beyond the DCGAN the kill benchmark uses, each with state a resume must restore:
# the conditional GAN its labels' order, DANN its λ and learning-rate schedule over the two
# domains' batches, and a PixelCNN with a cosine learning-rate schedule and Keras' moving
# average of the weights (`use_ema`, as the pixelcnn-large-mnist5k and gated-pixelcnn-mnist5k
# recipes) the average it had kept. PixelCNN++ (its per-step learning-rate decay, a function
# of the restored step count, and its dropout noise) is killed by the benchmark instead
# (`python bench/resume_kill.py --recipe bench/resume_kill_recipes/pixelcnnpp-dropout.json`):
# here its case cost a minute of CI (two processes tracing its U-net and sampler, then the
# resume), a twentieth of the suite, for state the other cases restore the same way.
# The write to kill in, epoch 2's checkpoint: writes are recipe.json, then per epoch the
# sample grid (none for DANN), the .keras file and its state.
KILLED_WRITE = {"cgan": 6, "dann": 4, "pixelcnn-ema": 6}
OTHER_FAMILIES = {
    "cgan": Recipe("cgan", data="digits", epochs=2, batch_size=64, precision="float32",
                   hparams={"latent_dim": 8, "generator_widths": [16, 8], "discriminator_widths": [8, 16]}),
    "dann": Recipe("dann", data=("digits", "digits"), image_size=12, epochs=2, batch_size=64, precision="float32",
                   hparams={"filters": [4], "classifier_widths": [8], "discriminator_widths": [8]}),
    "pixelcnn-ema": Recipe("pixelcnn", data="digits", image_size=8, epochs=2, batch_size=64, precision="float32",
                           hparams={"filters": 4, "num_layers": 1},
                           compile={"optimizer": averaging_adam(1e-2, decay_steps=40, ema_momentum=0.9)}),
}


@pytest.mark.parametrize("family", sorted(OTHER_FAMILIES))
def test_other_families_killed_in_a_checkpoint_write_resume_bit_identical(family, tmp_path):
    """SIGKILL halfway through writing epoch 2's (the last) checkpoint, then resume from
    epoch 1's: the same weights, optimizer state, grids and run.json as an uninterrupted run."""
    recipe = OTHER_FAMILIES[family]
    reference = resume_kill.child(tmp_path / "reference", recipe, "run")
    killed = resume_kill.child(tmp_path / "killed", recipe, f"write:{KILLED_WRITE[family]}:torn")
    assert resume_kill.finish(reference)[0] == 0
    code, _, stderr = resume_kill.finish(killed)
    assert code == -signal.SIGKILL, stderr
    assert resume.complete_checkpoints(tmp_path / "killed" / "checkpoints") == [1]
    training.train(recipe, tmp_path / "killed", grid_size=16, verbose=0, resume=True)
    assert not resume_kill.temporaries(tmp_path / "killed")
    assert resume_kill.differences(resume_kill.digest(tmp_path / "reference"),
                                   resume_kill.digest(tmp_path / "killed")) == []


def test_ctrl_c_after_the_last_epoch_finishes_the_run_and_says_so(tmp_path, capfd):
    """Ctrl-C while the run's last files are written (after fit) is not acted on, so that the
    folder is whole: the run used to finish without a word about it."""
    import keras

    class CtrlCAfterTraining(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            os.kill(os.getpid(), signal.SIGINT)

    recipe = Recipe("dcgan", data="digits", epochs=1, batch_size=64, hparams=TINY_GAN)
    training.train(recipe, tmp_path / "run", grid_size=4, verbose=0, callbacks=[CtrlCAfterTraining()])
    assert (tmp_path / "run" / "model.keras").is_file() and (tmp_path / "run" / "run.json").is_file()
    assert capfd.readouterr().err.strip().splitlines()[-1] == (
        "keras-gen: Ctrl-C came after the last epoch; the run was finished, its folder is complete")


def test_an_interrupted_adda_run_names_its_epoch_out_of_both_stages(tmp_path):
    """ADDA numbers its epochs on through its stages (2 + 2 here): Ctrl-C in the last one said
    "epoch 4 of 2" (the recipe's stage-2 epochs)."""
    import keras

    class CtrlCInEpoch4(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == 3 and batch == 1:
                os.kill(os.getpid(), signal.SIGINT)

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

    recipe = Recipe("adda", data=("mnist5k", "mnistm5k"), epochs=2, batch_size=500,
                    hparams={"filters": [4, 4], "classifier_widths": [8], "discriminator_widths": [8],
                             "source_epochs": 2})
    with pytest.raises(resume.TrainingInterrupted, match=r"interrupted in epoch 4 of 4; the newest checkpoint is "
                                                          r".*epoch_003\.keras"):
        training.train(recipe, tmp_path / "run", verbose=0, callbacks=[CtrlCInEpoch4()])


def test_weights_broken_by_an_epochs_last_update_stop_the_run_before_they_are_saved(tmp_path):
    """A step's loss is computed before its update: an update that makes the weights NaN in an
    epoch's last step left every loss finite, and the epoch's grid and checkpoint were written
    from the broken weights (then kept as the 'last good' model)."""
    import keras

    class BreakAtTheEndOfEpoch2(keras.callbacks.Callback):  # stands in for such an update
        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.g_optimizer.iterations) == 2 * self.params["steps"]:
                self.model.generator.weights[0].assign(np.full(self.model.generator.weights[0].shape, np.nan))

    recipe = Recipe("dcgan", data="digits", epochs=3, batch_size=64, hparams=TINY_GAN)
    run = tmp_path / "run"
    with pytest.raises(resume.NonFiniteLoss, match=r"the weights hold NaN or infinite values after epoch 2 .*: "
                                                   r"training stopped; model.keras is epoch 1, the last good"):
        training.train(recipe, run, grid_size=4, verbose=0, callbacks=[BreakAtTheEndOfEpoch2()])
    kept = keras.models.load_model(run / "model.keras")
    assert all(np.isfinite(w).all() for w in kept.get_weights())
    assert not (run / "samples" / "epoch_002.png").exists()
    assert not (run / "checkpoints" / "epoch_002.keras").exists()


def test_a_refused_resume_removes_nothing_and_a_run_killed_before_its_recipe_says_how_to_resume(tmp_path):
    """`--resume runs` (the parent of a live run, a slip) removed every temporary under it,
    the live run's checkpoint in the making included."""
    live = tmp_path / "runs" / "live" / "checkpoints"
    live.mkdir(parents=True)
    in_use = live / ".epoch_001.keras.tmp-abc.keras"
    in_use.write_bytes(b"being written")
    with pytest.raises(KerasGenError, match="holds no recipe.json: not a keras-gen run folder"):
        resume.prepare(tmp_path / "runs")
    assert in_use.exists()
    killed = tmp_path / "killed"  # killed while writing its first file, the recipe
    killed.mkdir()
    (killed / ".recipe.json.tmp-x1").write_text("{")
    with pytest.raises(KerasGenError, match="killed before it wrote its recipe; give the command that started it "
                                            "again, with --resume DIR"):
        resume.prepare(killed)
    recipe = Recipe("dcgan", data="digits", epochs=1, hparams=TINY_GAN)
    assert resume.prepare(killed, recipe)[1:] == (0, None)  # with the recipe: starts again, leftovers gone
    assert list(killed.iterdir()) == []


def test_a_run_folder_is_trained_by_one_process_at_a_time(tmp_path):
    """A second process resuming a run that was still training tidied away the first one's
    files as a killed run's, and both trained into one folder."""
    recipe = Recipe("dcgan", data="digits", epochs=1, batch_size=64, hparams=TINY_GAN)
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom keras_gen import resume\n"
         "with resume.run_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n", str(run)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(KerasGenError, match=rf"the run folder .* is in use by another keras-gen process \(pid "
                                                rf"{holder.pid}\)"):
            training.train(recipe, run, verbose=0)
        (run / resume.RECIPE).write_text(recipe.to_json())
        with pytest.raises(KerasGenError, match="is in use by another keras-gen process"):
            training.train(None, run, verbose=0, resume=True)
        assert (run / resume.RECIPE).is_file()
    finally:
        holder.kill()
        holder.wait()
    # Killed, the holder's lock is gone with it (the file stays): the folder trains again.
    (run / resume.RECIPE).unlink()
    assert [p.name for p in run.iterdir()] == [resume.LOCK]
    training.train(recipe, run, grid_size=4, verbose=0)
    assert (run / "model.keras").is_file() and not (run / resume.LOCK).exists()
