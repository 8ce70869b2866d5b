"""The CPU description that every figure carries, and the precision "auto" picks on it."""
import warnings

import pytest

from keras_gen import hardware
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
    with pytest.raises(ValueError, match="KERAS_GEN_AUTO_PRECISION must be float32 or mixed_bfloat16"):
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
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hardware.resolve_precision("mixed_bfloat16")  # once per process
        hardware.resolve_precision("float32")


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
