"""Time to export zoo entries as SavedModels: keras-gen's export against Keras' ExportArchive as is.

keras-gen exports through Keras' `ExportArchive`, but makes its first trace of each signature
(Keras lists the variables a signature uses) in a save context, so that `tf.saved_model.save`
reuses it instead of tracing the signature again (`keras_gen.export._archive`). "keras as is"
runs the same export with Keras' archive unchanged: every signature traced twice. Each
measurement is a fresh process (nothing traced before), loading the entry in float32 and then
timing `keras_gen.export.export` alone; the rounds interleave the two ways and the entries,
and a cell is the median of its rounds. Both ways write the same signatures (checked: the
same names and the same `sample` images for one seed in every round).

    python bench/export_time.py [--entries pixelcnnpp-mnist5k gated-pixelcnn-mnist5k dcgan-mnist5k] [--rounds 3]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchargs import QUOTABLE_ROUNDS, positive_int, rounds_note  # noqa: E402

WAYS = ("keras-gen", "keras as is")

CHILD = r"""
import json, sys, tempfile, time
import numpy as np
import tensorflow as tf
import keras
from keras_gen import export, zoo

entry, way = sys.argv[1], sys.argv[2]
model = zoo.load(entry, precision="float32")
if way == "keras as is":
    export._archive = lambda: keras.export.ExportArchive()
start = time.perf_counter()
path = export.export(model, tempfile.mkdtemp(), "m")
seconds = time.perf_counter() - start
loaded = tf.saved_model.load(str(path))
names = sorted(loaded.signatures)
images = loaded.signatures["sample"](**{"batch_size": tf.constant(2), "seed": tf.constant(7)}) \
    if "batch_size" in loaded.signatures["sample"].structured_input_signature[1] else None
digest = None if images is None else int(np.asarray(images["images"], np.int64).sum())
print(json.dumps({"seconds": seconds, "signatures": names, "sample_sum": digest}))
"""


def measure(entry, way):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", CHILD, entry, way], capture_output=True, text=True, env=env,
                          cwd=tempfile.gettempdir())
    if done.returncode:
        sys.exit(f"export_time: {entry} ({way}) failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", nargs="+", default=["pixelcnnpp-mnist5k", "gated-pixelcnn-mnist5k",
                                                         "dcgan-mnist5k"])
    parser.add_argument("--rounds", type=positive_int, default=QUOTABLE_ROUNDS)
    args = parser.parse_args()
    from keras_gen import zoo  # no TensorFlow: names checked before any work

    unknown = [e for e in args.entries if e not in zoo.list()]
    if unknown:
        parser.error(f"unknown zoo entries: {', '.join(unknown)} (entries: {', '.join(zoo.list())})")

    seconds = {(e, w): [] for e in args.entries for w in WAYS}
    for r in range(args.rounds):
        for entry in args.entries:
            results = {}
            for way in (WAYS if r % 2 == 0 else WAYS[::-1]):
                results[way] = measure(entry, way)
                seconds[entry, way].append(results[way]["seconds"])
                print(f"round {r + 1} {entry} {way}: {results[way]['seconds']:.1f} s", file=sys.stderr, flush=True)
            a, b = (results[w] for w in WAYS)
            if (a["signatures"], a["sample_sum"]) != (b["signatures"], b["sample_sum"]):
                sys.exit(f"export_time: the two exports of {entry} differ: {a} against {b}")

    print("| entry | keras-gen (s) | keras as is (s) | speed-up | rounds |")
    print("| --- | --- | --- | --- | --- |")
    for entry in args.entries:
        ours, theirs = (statistics.median(seconds[entry, w]) for w in WAYS)
        rounds = ", ".join(f"{x:.1f}/{y:.1f}" for x, y in zip(seconds[entry, WAYS[0]], seconds[entry, WAYS[1]]))
        print(f"| `{entry}` | {ours:.1f} | {theirs:.1f} | {theirs / ours:.2f}× | {rounds} |")
    note = rounds_note(args.rounds)
    if note:
        print(note)


if __name__ == "__main__":
    main()
