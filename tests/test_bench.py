"""The benchmark scripts' own arithmetic: what they count and draw (their figures are runs)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).parents[1] / "bench"


def bench_module(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("model_name", ["pixelcnn", "gated-pixelcnn"])
def test_pixelcnn_bench_counts_the_models_convolutions(model_name):
    """FLOP per image = 2 x (3 x forward multiply-adds - the input gradient of the kernels that
    read the image), the count taken here from the model's own kernels at 28x28."""
    from keras_gen import registry

    bench = bench_module("pixelcnn_throughput")
    model = registry.model_class(model_name)(image_shape=(28, 28, 1), filters=64, num_layers=7, kernel_size=3,
                                             first_kernel_size=7, precision="float32")
    kernels = [w for w in model.weights if len(w.shape) == 4]
    forward = sum(28 * 28 * int(np.prod(w.shape)) for w in kernels)
    reads_image = sum(28 * 28 * int(np.prod(w.shape)) for w in kernels if w.shape[2] == 1)
    assert bench.flop_per_image(model_name) == 2 * (3 * forward - reads_image)


def test_low_shot_subsets_take_k_per_class_by_seed():
    bench = bench_module("gan_augmentation")
    labels = np.repeat(np.arange(10), 30)[np.random.default_rng(0).permutation(300)]
    chosen = bench.labelled_subset(labels, 5, seed=1)
    assert np.bincount(labels[chosen], minlength=10).tolist() == [5] * 10 and len(set(chosen)) == 50
    assert np.array_equal(chosen, bench.labelled_subset(labels, 5, seed=1))
    assert not np.array_equal(chosen, bench.labelled_subset(labels, 5, seed=2))


def test_the_dcgan_bench_skips_bfloat16_on_a_cpu_without_it(tmp_path):
    """On an AVX2-only CPU (its /proc/cpuinfo given) no bf16 configuration runs, and the ceiling
    measures float32 only; with avx512_bf16 they all run."""
    import subprocess
    import sys

    flags = "fpu sse sse2 avx avx2 fma"
    outputs = {}
    for name, extra in (("avx2", ""), ("bf16", " avx512f avx512_bf16")):
        cpuinfo = tmp_path / name
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: {flags}{extra}\n\n")
        outputs[name] = subprocess.run([sys.executable, str(BENCH / "dcgan_throughput.py"), "--list", "--cpuinfo",
                                        str(cpuinfo)], capture_output=True, text=True, check=True).stdout
    assert "no native bfloat16: bf16 configurations skipped" in outputs["avx2"]
    assert "bf16" not in outputs["avx2"].split("skipped", 1)[1] and "--bf16" not in outputs["avx2"]
    assert "PyTorch eager fp32" in outputs["avx2"] and "keras-gen fp32, auto" in outputs["avx2"]
    assert "PyTorch eager bf16" in outputs["bf16"] and "ceiling --bf16" in outputs["bf16"]
    assert "mixed_bfloat16" not in outputs["avx2"] and "mixed_bfloat16" in outputs["bf16"]
    auto_only = subprocess.run([sys.executable, str(BENCH / "dcgan_throughput.py"), "--list", "--auto-only",
                                "--cpuinfo", str(tmp_path / "bf16")], capture_output=True, text=True, check=True).stdout
    keras_lines = [line for line in auto_only.splitlines() if line.startswith("keras-gen")]
    assert [line.split(":")[0] for line in keras_lines] == ["keras-gen fp32, auto", "keras-gen bf16, auto"]
    assert "PyTorch eager bf16" in auto_only and "ceiling --bf16" in auto_only


def test_the_sampling_bench_times_each_zoo_model_from_its_entry():
    """bench/ar_sampling.py's zoo-backed models name zoo entries of the model they say (the
    `-zoo` suffix marks an entry of a model also timed at its default size), and `--models`
    offers exactly those and the two built at a size."""
    import subprocess
    import sys

    from keras_gen import zoo

    bench = bench_module("ar_sampling")
    for name, entry in bench.ZOO_ENTRIES.items():
        assert entry in zoo.list(), name
        assert zoo.recipe(entry).model == name.removesuffix("-zoo").removesuffix("-large"), (name, entry)
    usage = subprocess.run([sys.executable, str(BENCH / "ar_sampling.py"), "--help"], capture_output=True, text=True,
                           check=True).stdout
    for name in [*bench.ZOO_ENTRIES, "gated-pixelcnn", "pixelrnn-diagonal", "--naive-batches"]:
        assert name in usage, name


def test_the_kill_bench_takes_a_recipe_file_and_refuses_a_bad_one(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "bad.json"
    bad.write_text('{"model": "no-such-model"}')
    done = subprocess.run([sys.executable, str(BENCH / "resume_kill.py"), "--recipe", str(bad), "--n", "1"],
                          capture_output=True, text=True)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert done.stderr.startswith("resume_kill: ") and "no-such-model" in done.stderr and done.stderr.count("\n") == 1
    from keras_gen.recipe import Recipe

    shipped = {Recipe.from_file(path).model for path in (BENCH / "resume_kill_recipes").glob("*.json")}
    assert shipped == {"pixelcnn++", "cgan", "dann"}
    dropout = Recipe.from_file(BENCH / "resume_kill_recipes" / "pixelcnnpp-dropout.json").hparams
    assert dropout["dropout"] > 0 and dropout["blocks_per_resolution"] >= 1  # dropout acts inside the blocks


BAD_ARGUMENTS = [
    ("dcgan_throughput", ["--rounds", "0"], "--rounds: 0 is out of range"),
    ("dcgan_throughput", ["--spe", "abc"], "--spe: 'abc' is not a whole number"),
    ("dcgan_throughput", ["--torch-python", "/no/such/python"], "--torch-python: /no/such/python is not an executable"),
    ("dcgan_throughput", ["--cpuinfo", "/proc/cpuinfo"], "--cpuinfo works only with --list"),
    ("dcgan_throughput", ["--baseline-tree", "/"], "holds no keras_gen package"),
    ("pixelcnn_throughput", ["--images", "10"], "--images: 10 is out of range: from 64 to 5000"),
    ("pixelcnn_throughput", ["--rounds", "-1"], "--rounds: -1 is out of range"),
    ("gan_step_throughput", ["--worker", "nosuch"], "--worker: invalid choice"),
    ("gan_step_throughput", ["--rounds", "0"], "--rounds: 0 is out of range"),
    ("ar_sampling", ["--rounds", "0"], "--rounds: 0 is out of range"),
    ("ar_sampling", ["--batches", "1", "--naive-batches", "16"], "--naive-batches 16: not among --batches"),
    ("domain_adaptation", ["--pair", "foo"], "'foo' is not SOURCE:TARGET"),
    ("dann_crosscheck", ["--pair", "mnist5k:nosuch"], "'mnist5k:nosuch' is not SOURCE:TARGET"),
    ("gan_augmentation", ["--k", "0"], "--k: 0 is out of range"),
    ("gan_augmentation", ["--k", "1000"], "--k 1000: the mnist5k train split has"),
    ("gan_recipes", ["--variant", "nosuch"], "dcgan has no variant nosuch"),
    ("metrics_evaluate", ["--rounds", "0"], "--rounds: 0 is out of range"),
    ("resume_kill", ["--epochs", "1"], "--epochs: 1 is out of range: at least 2"),
    ("resume_kill", ["--writes", "2"], "--writes: 2 is out of range: a finite number from 0 to 1"),
]


@pytest.mark.parametrize("script, arguments, message", BAD_ARGUMENTS,
                         ids=[f"{s}{' '.join(a)}" for s, a, _ in BAD_ARGUMENTS])
def test_a_bad_benchmark_argument_is_one_line_before_any_work(script, arguments, message):
    """Before: tracebacks after a partial table (--rounds 0), after the ceiling had run
    (--torch-python), or an empty table and exit 0 (an unknown --variant)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, str(BENCH / f"{script}.py"), *arguments], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, (done.returncode, done.stderr[-1000:])
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert message in done.stderr.splitlines()[-1], done.stderr


def test_benchmark_rounds_rotate_and_fewer_than_three_say_so():
    args = bench_module("benchargs")
    assert [args.rotated("abc", r) for r in range(4)] == [list("abc"), list("bca"), list("cab"), list("abc")]
    assert args.rounds_note(3) == "" and "not figures to quote" in args.rounds_note(1)
