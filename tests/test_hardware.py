"""The CPU description that every figure carries."""
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
