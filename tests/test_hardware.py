"""The CPU description that every figure carries, and the precision "auto" picks on it."""
import warnings

import pytest

from keras_gen import hardware
from keras_gen.errors import KerasGenError
from keras_gen.hardware import cpu_info, describe_cpu, has_native_bfloat16

AVX512_BF16 = "model name\t: AMD EPYC 9R14\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n"
AVX2 = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse avx2\nmodel name\t: other\n"


def test_instruction_sets_are_read_from_cpuinfo(tmp_path):
    (tmp_path / "a").write_text(AVX512_BF16)
    (tmp_path / "b").write_text(AVX2)
    name, flags = cpu_info(tmp_path / "a")
    assert name == "AMD EPYC 9R14" and has_native_bfloat16(flags)
    assert describe_cpu(tmp_path / "a").endswith("AVX-512 + bf16")
    assert describe_cpu(tmp_path / "b").startswith("AMD EPYC 7B13,") and describe_cpu(tmp_path / "b").endswith("AVX2 only")
    assert not has_native_bfloat16(cpu_info(tmp_path / "b")[1])
    assert cpu_info(tmp_path / "missing")[0]  # falls back to the platform's name


@pytest.fixture
def cpu(monkeypatch, tmp_path):
    """`cpu("avx2")` or `cpu("bf16")`: this process now runs on that CPU, "auto" unpinned,
    and the once-per-process warning not yet given."""
    monkeypatch.delenv(hardware.AUTO_PRECISION_ENV, raising=False)
    monkeypatch.setattr(hardware, "_warned_emulated_bfloat16", False)

    def use(kind):
        path = tmp_path / kind
        path.write_text(AVX2 if kind == "avx2" else AVX512_BF16)
        monkeypatch.setattr(hardware, "cpu_info", lambda cpuinfo=None, _real=cpu_info: _real(path))

    return use


def test_auto_precision_is_bfloat16_only_on_a_cpu_with_native_bfloat16(cpu, monkeypatch):
    cpu("bf16")
    assert hardware.resolve_precision("auto") == "mixed_bfloat16"
    cpu("avx2")
    assert hardware.resolve_precision("auto") == "float32"
    assert hardware.resolve_precision("float32") == "float32"
    monkeypatch.setenv(hardware.AUTO_PRECISION_ENV, "mixed_bfloat16")  # a pin wins over the CPU
    assert hardware.resolve_precision("auto") == "mixed_bfloat16"
    monkeypatch.setenv(hardware.AUTO_PRECISION_ENV, "float16")
    with pytest.raises(KerasGenError, match="variable KERAS_GEN_AUTO_PRECISION must be one of float32, mixed_bfloat16"):
        hardware.resolve_precision("auto")


def test_explicit_bfloat16_on_a_cpu_that_emulates_it_warns_once(cpu):
    cpu("bf16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # native bfloat16: nothing to say
        assert hardware.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"
    cpu("avx2")
    with pytest.warns(hardware.PrecisionWarning) as record:
        assert hardware.resolve_precision("mixed_bfloat16") == "mixed_bfloat16"  # still what was asked
    (message,) = [str(w.message) for w in record]
    assert "\n" not in message and "AMD EPYC 7B13" in message and "8-12x slower than float32" in message
    assert record[0].filename == __file__  # the line that asked, not keras-gen's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hardware.resolve_precision("mixed_bfloat16")  # once per process
        hardware.resolve_precision("float32")


def test_the_emulated_bfloat16_warning_points_at_the_users_line(cpu):
    """However deep the model's constructors nest (before: a line inside
    keras_gen/models/autoregressive.py)."""
    from keras_gen.models import PixelCNN

    cpu("avx2")
    with pytest.warns(hardware.PrecisionWarning) as record:
        PixelCNN(image_shape=(4, 4, 1), filters=4, num_layers=1, precision="mixed_bfloat16")
    assert [w.filename for w in record] == [__file__]


def test_models_resolve_auto_where_they_are_built_and_save_the_result(cpu, tmp_path):
    import keras

    from keras_gen.models import DCGAN, PixelCNN

    cpu("bf16")
    gan = DCGAN(image_shape=(8, 8, 1), latent_dim=4, generator_widths=(8,), discriminator_widths=(8,))
    assert gan.precision == gan.get_config()["precision"] == "mixed_bfloat16"
    assert gan.generator.layers[0].dtype_policy.name == "mixed_bfloat16"
    gan.save(tmp_path / "gan.keras")
    cpu("avx2")
    pixelcnn = PixelCNN(image_shape=(4, 4, 1), filters=8, num_layers=1)
    assert pixelcnn.precision == "float32"
    assert {layer.dtype_policy.name for layer in pixelcnn.network.layers} == {"float32"}
    # A saved model holds the precision it was built with, not "auto": loaded on a CPU that
    # only emulates bfloat16 it still computes in bfloat16, and says so.
    with pytest.warns(hardware.PrecisionWarning, match="AMD EPYC 7B13"):
        loaded = keras.models.load_model(tmp_path / "gan.keras")
    assert loaded.precision == "mixed_bfloat16"


AVX512 = "model name\t: Intel Xeon\nflags\t\t: fpu sse avx2 avx512f\n"
AMX = "model name\t: Intel Xeon\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n"


@pytest.mark.parametrize("text, kind, xla", [
    (AVX2, "avx2", True),  # XLA measured faster there
    (AVX512, "avx512", False),
    (AVX512_BF16, "avx512_bf16", False),
    (AMX, "amx", False),
    ("model name\t: ARM\nFeatures\t: fp asimd\n", "other", False),
    ("", "other", False),  # flags unreadable
])
def test_each_cpu_kind_gets_xla_only_where_it_was_measured_faster(tmp_path, monkeypatch, text, kind, xla):
    monkeypatch.delenv(hardware.AUTO_JIT_ENV, raising=False)
    (tmp_path / "cpuinfo").write_text(text)
    flags = cpu_info(tmp_path / "cpuinfo")[1]
    assert hardware.cpu_kind(flags) == kind and kind in hardware.CPU_KINDS
    assert hardware.auto_jit_compile(flags) is xla


def test_the_auto_xla_choice_can_be_pinned(monkeypatch):
    avx2 = frozenset({"avx2"})
    for value, expected in (("1", True), ("on", True), ("TRUE", True), ("0", False), ("off", False)):
        monkeypatch.setenv(hardware.AUTO_JIT_ENV, value)
        assert hardware.auto_jit_compile(avx2) is expected
        assert hardware.auto_jit_compile(frozenset({"avx512f"})) is expected
    monkeypatch.setenv(hardware.AUTO_JIT_ENV, "maybe")
    with pytest.raises(KerasGenError, match="variable KERAS_GEN_AUTO_JIT must be one of 1, true, on, 0"):
        hardware.auto_jit_compile(avx2)


@pytest.mark.parametrize("variable, value", [("KERAS_GEN_AUTO_JIT", "maybe"), ("KERAS_GEN_AUTO_PRECISION", "fp32")])
def test_a_bad_environment_setting_is_one_line_that_names_it(monkeypatch, tmp_path, variable, value):
    """Before: KERAS_GEN_AUTO_JIT=maybe gave a ValueError traceback from `keras-gen sample`,
    and KERAS_GEN_AUTO_PRECISION=fp32 blamed the model ("cannot build dcgan", "config.json
    does not build a dcgan")."""
    from conftest import run_cli_here
    from keras_gen import zoo

    monkeypatch.setenv(variable, value)
    for args in (["sample", "dcgan-mnist5k", "--n", "4", "--out", tmp_path / "x.png"],
                 ["train", "dcgan", "--epochs", "1", "--out", tmp_path / "run"]):
        done = run_cli_here(*args)
        assert done.returncode == 1 and done.stderr.count("\n") == 1, done.stderr
        assert f"the environment variable {variable} must be one of" in done.stderr and repr(value) in done.stderr
    assert not (tmp_path / "x.png").exists() and not (tmp_path / "run").exists()
    with pytest.raises(KerasGenError, match=f"^the environment variable {variable}"):
        zoo.load("dcgan-mnist5k", precision="auto")


@pytest.mark.parametrize("steps, at_most, expected", [
    (39, 16, 13),  # mnist5k's 5,000 images in batches of 128
    (40, 16, 10),
    (12, 16, 12),
    (17, 16, 1),  # a prime above the bound: one step per call
    (1, 16, 1),
    (0, 16, 1),
    (None, 16, 1),
    (39, 1, 1),
    (39, 0, 1),
])
def test_steps_per_execution_divides_the_epoch(steps, at_most, expected):
    n = hardware.steps_per_execution_for(steps, at_most)
    assert n == expected
    assert not steps or steps % n == 0


def test_keras_steps_per_execution_that_divides_the_epoch_keeps_epochs_apart():
    """Why the divisor: with `steps_per_epoch` given, Keras 3.15 runs whole groups of
    `steps_per_execution` steps, so a group that straddles the epoch's end trains on the next
    epoch's first batches (and a resumed run would read other batches than the uninterrupted
    one). A divisor trains exactly `steps_per_epoch` batches per epoch."""
    import keras
    import numpy as np

    def batches_per_epoch(steps_per_execution):
        class Count(keras.Model):
            def train_step(self, data):
                self.seen.assign_add(1)
                return {"seen": self.seen}

        model = Count()
        model.seen = keras.Variable(0, dtype="int64", trainable=False)
        model.compile(steps_per_execution=steps_per_execution)
        seen = []
        callback = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(int(model.seen.numpy())))
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices(np.zeros([3 * 6, 1], "float32")).batch(1)  # 3 epochs of 6
        model.fit(ds, epochs=3, steps_per_epoch=6, verbose=0, callbacks=[callback], shuffle=False)
        return np.diff([0] + seen).tolist()

    assert batches_per_epoch(hardware.steps_per_execution_for(6, 4)) == [6, 6, 6]  # 3 per call
    with pytest.warns(UserWarning, match="ran out of data"):  # the last epoch comes up short
        assert batches_per_epoch(4)[0] == 8  # 2 calls of 4: epoch 1 takes 2 of epoch 2's batches


def test_xla_is_chosen_per_cpu_where_compile_is_not_told_and_not_remembered(monkeypatch):
    """`compile()` without `jit_compile` takes `auto_jit_compile()` on the CPU it runs on; the
    choice is not written into the compile config, so a model saved on one CPU and loaded on
    another decides there. A `jit_compile` given is kept and remembered."""
    from keras_gen.models import DCGAN

    def compiled(**kwargs):
        model = DCGAN(image_shape=(8, 8, 1), latent_dim=4, generator_widths=(8,), discriminator_widths=(8,))
        model.compile(**kwargs)
        return model

    for forced, expected in (("1", True), ("0", False)):
        monkeypatch.setenv(hardware.AUTO_JIT_ENV, forced)
        model = compiled()
        assert model.jit_compile is expected and "jit_compile" not in model._compile_kwargs
        explicit = compiled(jit_compile=not expected)
        assert explicit.jit_compile is (not expected) and explicit._compile_kwargs["jit_compile"] is (not expected)
        # "auto" is keras-gen's per-CPU choice, not Keras' (which said False on every CPU).
        auto = compiled(jit_compile="auto")
        assert auto.jit_compile is expected and auto._compile_kwargs["jit_compile"] == "auto"


def test_the_cli_xla_flags_set_the_recipe_and_the_settings_line_says_auto(monkeypatch):
    from keras_gen import cli

    parser = cli.build_parser()
    for flags, expected in (([], None), (["--xla"], True), (["--no-xla"], False)):
        args = parser.parse_args(["train", "dcgan", *flags])
        recipe = cli.recipe_from_args(args)
        assert recipe.compile.get("jit_compile") == expected
    monkeypatch.setenv(hardware.AUTO_JIT_ENV, "1")
    assert "XLA auto -> on, one device;" in cli._train_settings(cli.recipe_from_args(parser.parse_args(["train", "dcgan"])).resolved())
    assert "XLA off, one device;" in cli._train_settings(
        cli.recipe_from_args(parser.parse_args(["train", "dcgan", "--no-xla"])).resolved())
    # --strategy is named beside them (a resumed mirrored run says so before TensorFlow starts).
    args = parser.parse_args(["train", "dcgan", "--strategy", "mirrored"])
    assert ", tf.distribute mirrored; CPU " in cli._train_settings(cli.recipe_from_args(args).resolved(), args.strategy)
