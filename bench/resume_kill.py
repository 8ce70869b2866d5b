"""Kill training runs with SIGKILL at random moments, resume them, and check that each ends
bit-identical to one uninterrupted run of the same recipe.

    python bench/resume_kill.py [--n 20] [--epochs 3] [--batch-size 64] [--data digits]
                                [--image-size S] [--writes 0.5] [--keep DIR]

One reference run (a subprocess, as every run here), then N runs: a fraction `--writes` of
them SIGKILL themselves inside a random one of the run's atomic writes (a checkpoint, its
state, a sample grid, model.keras, run.json), at a random phase of it (the temporary half
written, written but not renamed, renamed but the folder not yet synced); the others are
SIGKILLed by this script at a uniformly random time of the reference's training span (so
mostly during a step). Each killed run is resumed (`keras_gen.training.train(recipe, DIR,
resume=True)` in a fresh process) and compared with the reference: the final model's weights
and every optimizer's variables, every sample grid's PNG bytes, and run.json but for the
seconds. Prints "k of N bit-identical" and the CPU.

Uses float32 (`precision` pinned in the recipe; `--precision mixed_bfloat16` on a CPU with
native bfloat16) and a tiny DCGAN (latent 8, widths (16, 8) /
(8, 16)), as the test suite does (`tests/test_resume.py`); `--model wgan-gp` (or another GAN
on the DCGAN networks) the same networks with that model's game. `--recipe FILE` runs any
model family from a recipe file (as `keras-gen train --recipe` takes it; its epochs, batch
size, data and precision, not this script's), e.g. PixelCNN++ with dropout (noise and a
per-step learning-rate decay to restore), a conditional GAN or DANN over two domains:

    python bench/resume_kill.py --recipe bench/resume_kill_recipes/pixelcnnpp-dropout.json --n 20

(`bench/resume_kill_recipes/`: PixelCNN++ with dropout, cGAN, DANN.)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchargs import fraction, int_range, positive_int  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TINY_DCGAN = {"latent_dim": 8, "generator_widths": [16, 8], "discriminator_widths": [8, 16]}
PHASES = ("torn", "before-rename", "after-rename")

# A training run in a fresh process. argv: run folder, recipe JSON, mode: "run", "resume",
# "count" (print how many atomic writes the run made) or "write:N:PHASE" (SIGKILL itself
# inside its N-th atomic write, at PHASE; or, with PHASE "sigint", send itself SIGINT there).
CHILD = r"""
import json, os, signal, sys
from pathlib import Path
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
out, recipe_json, mode = sys.argv[1:4]
from keras_gen import files, training
from keras_gen.recipe import Recipe

count, target, phase = [0], None, None
if mode.startswith("write:"):
    _, target, phase = mode.split(":")
    target = int(target)
real_tree, real_dir = files.fsync_tree, files.fsync_dir

def fsync_tree(path):  # atomic_path: the temporary is written, not yet renamed
    count[0] += 1
    if count[0] == target and phase == "sigint":  # Ctrl-C in the middle of the write
        os.kill(os.getpid(), signal.SIGINT)
    if count[0] == target and phase in ("torn", "before-rename"):
        if phase == "torn" and Path(path).is_file():  # as if killed halfway through the write
            os.truncate(path, Path(path).stat().st_size // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    real_tree(path)

def fsync_dir(folder):  # atomic_path: renamed, the folder not yet synced
    real_dir(folder)
    if count[0] == target and phase == "after-rename":
        os.kill(os.getpid(), signal.SIGKILL)

files.fsync_tree, files.fsync_dir = fsync_tree, fsync_dir
recipe = Recipe.from_dict(json.loads(recipe_json))
training.train(recipe, out, grid_size=16, verbose=0, resume=mode == "resume")
if mode == "count":
    print("WRITES", count[0])
"""


def tiny_recipe(epochs=3, batch_size=64, data="digits", image_size=None, seed=0, model="dcgan", precision="float32"):
    from keras_gen.recipe import Recipe

    return Recipe(model, data=data, image_size=image_size, epochs=epochs, batch_size=batch_size, seed=seed,
                  precision=precision, hparams=dict(TINY_DCGAN))


def child(out, recipe, mode, timeout=600):
    """Start a training process; returns the Popen."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-c", CHILD, str(out), json.dumps(recipe.to_dict()), mode],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc, timeout=600):
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def run_to_end(out, recipe, mode="run"):
    code, stdout, stderr = finish(child(out, recipe, mode))
    if code != 0:
        raise RuntimeError(f"{mode} of {out} failed ({code}): {stderr[-2000:]}")
    return stdout


def temporaries(run_dir) -> list[str]:
    return sorted(str(p.relative_to(run_dir)) for p in Path(run_dir).rglob("*") if ".tmp-" in p.name)


def digest(run_dir) -> dict:
    """What must be bit-identical: sha256 of the final model's weights and optimizer variables,
    of each sample grid's bytes, and run.json without its seconds."""
    import keras
    import numpy as np

    import keras_gen  # noqa: F401  (registers the model classes)

    run_dir = Path(run_dir)
    model = keras.models.load_model(run_dir / "model.keras")
    arrays = hashlib.sha256()
    optimizers = getattr(model.optimizer, "optimizers", [model.optimizer])
    for value in [*model.get_weights(), *(v for o in optimizers for v in o.variables)]:
        value = np.asarray(keras.ops.convert_to_numpy(value))
        arrays.update(f"{value.dtype}{value.shape}".encode())
        arrays.update(np.ascontiguousarray(value).tobytes())
    info = json.loads((run_dir / "run.json").read_text())
    info.pop("train_seconds", None)
    out = {"model": arrays.hexdigest(), "run.json": hashlib.sha256(json.dumps(info, sort_keys=True).encode()).hexdigest()}
    for png in sorted((run_dir / "samples").glob("*.png")):
        out[f"samples/{png.name}"] = hashlib.sha256(png.read_bytes()).hexdigest()
    return out


def differences(reference: dict, other: dict) -> list[str]:
    return sorted(k for k in set(reference) | set(other) if reference.get(k) != other.get(k))


def kill_at_random_time(out, recipe, span, rng):
    """Start a run, SIGKILL it at a uniform time in `span` seconds after its recipe.json
    appears (training has begun); returns a description of what happened."""
    proc = child(out, recipe, "run")
    recipe_json = Path(out) / "recipe.json"
    while not recipe_json.exists() and proc.poll() is None:
        time.sleep(0.01)
    delay = rng.uniform(0, span)
    deadline = time.monotonic() + delay
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        finish(proc)
        return f"SIGKILL {delay:.2f} s into training"
    code, _, stderr = finish(proc)
    if code != 0:
        raise RuntimeError(f"run {out} failed ({code}): {stderr[-2000:]}")
    return f"finished before the kill at {delay:.2f} s"


def kill_in_write(out, recipe, writes, rng):
    n, phase = rng.randint(1, writes), rng.choice(PHASES)
    code, _, stderr = finish(child(out, recipe, f"write:{n}:{phase}"))
    if code not in (-signal.SIGKILL, 0):
        raise RuntimeError(f"run {out} failed ({code}): {stderr[-2000:]}")
    return f"SIGKILL in write {n} of {writes} ({phase})"


def resume_and_compare(out, recipe, reference):
    """Resume the killed run in `out` (unless it finished) and compare it with `reference`."""
    left = temporaries(out)
    if not (Path(out) / "run.json").exists():
        run_to_end(out, recipe, "resume")
    assert not temporaries(out), temporaries(out)
    return differences(reference, digest(out)), left


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=positive_int, default=20)
    parser.add_argument("--precision", default="float32", choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--model", default="dcgan", help="a GAN on the DCGAN networks (dcgan, wgan, wgan-gp, lsgan, dragan)")
    parser.add_argument("--recipe", help="a recipe file for any model (instead of --model and the sizes below)")
    parser.add_argument("--epochs", type=int_range(2), default=3, help="at least 2 (a kill needs an epoch to resume from)")
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--data", default="digits")
    parser.add_argument("--image-size", type=positive_int)
    parser.add_argument("--seed", type=int, default=0, help="the recipe's seed")
    parser.add_argument("--random-seed", type=int, default=None, help="seed of the kill times (default: random)")
    parser.add_argument("--writes", type=fraction, default=0.5, help="fraction of runs killed inside a write")
    parser.add_argument("--keep", help="keep the run folders here (default: a temporary folder)")
    args = parser.parse_args()

    from keras_gen.hardware import describe_cpu

    rng = random.Random(args.random_seed)
    if args.recipe:
        from keras_gen.errors import KerasGenError
        from keras_gen.recipe import Recipe

        try:
            recipe = Recipe.from_file(args.recipe)
        except KerasGenError as exc:
            raise SystemExit(f"resume_kill: {exc}") from None
    else:
        from keras_gen.errors import KerasGenError

        try:
            recipe = tiny_recipe(args.epochs, args.batch_size, args.data, args.image_size, args.seed, args.model,
                                 args.precision)
        except KerasGenError as exc:
            raise SystemExit(f"resume_kill: {exc}") from None
    work = Path(args.keep or tempfile.mkdtemp(prefix="keras-gen-resume-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{time.strftime('%Y-%m-%d')}, {describe_cpu()}; {recipe.model} on {' -> '.join(recipe.data)}, {recipe.epochs} "
          f"epochs, batch {recipe.batch_size}, {recipe.precision}", flush=True)

    start = time.monotonic()
    proc = child(work / "reference", recipe, "count")
    while not (work / "reference" / "recipe.json").exists() and proc.poll() is None:
        time.sleep(0.01)
    began = time.monotonic()
    code, stdout, stderr = finish(proc)
    if code != 0:
        raise SystemExit(f"the reference run failed: {stderr[-2000:]}")
    span = time.monotonic() - began
    writes = int(stdout.split("WRITES")[-1])
    reference = digest(work / "reference")
    print(f"reference: {time.monotonic() - start:.1f} s in all, {span:.1f} s after its start of training, "
          f"{writes} atomic writes", flush=True)
    again = work / "uninterrupted-again"
    run_to_end(again, recipe)
    same = not differences(reference, digest(again))
    print(f"a second uninterrupted run: {'bit-identical' if same else 'DIFFERENT: ' + ', '.join(differences(reference, digest(again)))}",
          flush=True)

    identical = 0
    for i in range(args.n):
        out = work / f"run{i:02d}"
        if rng.random() < args.writes:
            what = kill_in_write(out, recipe, writes, rng)
        else:
            what = kill_at_random_time(out, recipe, span, rng)
        diff, left = resume_and_compare(out, recipe, reference)
        identical += not diff
        note = f"; left {len(left)} temporar{'y' if len(left) == 1 else 'ies'}, cleaned" if left else ""
        print(f"run {i + 1:2d}: {what}{note} -> {'bit-identical' if not diff else 'DIFFERS in ' + ', '.join(diff)}",
              flush=True)
        if not args.keep and not diff:
            shutil.rmtree(out, ignore_errors=True)
    print(f"{identical} of {args.n} bit-identical (CPU: {describe_cpu()})")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if identical == args.n else 1


if __name__ == "__main__":
    sys.exit(main())
