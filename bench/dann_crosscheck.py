"""DANN cross-check: the paper's DANN written again in PyTorch, on keras-gen's offline domains.

keras-gen's DANN ends below source-only on its digit pairs (README, "Domain adaptation"). This
script asks whether that is keras-gen's code or the data and budget: it trains, in PyTorch and
with nothing from keras-gen's networks, the MNIST -> MNIST-M setup of Ganin et al. (2016,
JMLR, sec. 5.2 and fig. 4) on the same arrays keras-gen trains on:

- images scaled to [0, 1], grey sources repeated to 3 channels, the pixel mean of both
  domains' training images subtracted;
- feature extractor Conv(32, 5x5) -> ReLU -> MaxPool(2) -> Conv(48, 5x5) -> ReLU -> MaxPool(2)
  -> Flatten (768 features); label predictor 100 -> 100 -> 10; domain classifier 100 -> 1
  behind a gradient reversal layer;
- batches of 64 source and 64 target images; SGD with momentum 0.9, learning rate
  0.01 / (1 + 10 p)^0.75 and λ = λ_max (2 / (1 + exp(-10 p)) - 1) at training progress p,
  λ_max = 1 as in the paper (`--lambda-max` to try others, scored on a pair whose target is
  none of the reported pairs' targets: a choice scored on a reported target's test split
  would select on its test labels);
- "source-only" is the same run with λ = 0 (the domain classifier trains, the features do
  not see its gradient).

The figure is the target test accuracy after the last step; the accuracies printed along the
way (on the target's test and training images) read target labels and are for diagnosis only
(no choice is made from them): a gap between the two asks whether adaptation to the training
images carries over to the test images, whose mnistm5k backgrounds come from other blocks of
the photographs. Runs go one after another (two PyTorch processes on 2 cores slow each other
several-fold).

    python bench/dann_crosscheck.py --torch-python ~/.venvs/torchref/bin/python
    python bench/dann_crosscheck.py --pair syndigits5k:mnist5k --steps 3000 --seeds 0 1 2
"""
import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchargs import domain_pair, executable, int_range, non_negative_float, positive_int  # noqa: E402

TORCH_RUN = r'''
import sys, numpy as np, torch, torch.nn as nn, torch.nn.functional as F

arrays, mode = sys.argv[1], sys.argv[2]
steps, seed, lambda_max = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
d = np.load(arrays)


def tensor(x):
    x = torch.tensor(x, dtype=torch.float32).permute(0, 3, 1, 2) / 255.0
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


xs, ys = tensor(d["source_x"]), torch.tensor(d["source_y"]).long()
xt, xt_test, yt_test = tensor(d["target_x"]), tensor(d["target_test_x"]), torch.tensor(d["target_test_y"]).long()
yt = torch.tensor(d["target_y"]).long()  # read for the diagnosis line only
mean = torch.cat([xs, xt]).mean((0, 2, 3), keepdim=True)
xs, xt, xt_test = xs - mean, xt - mean, xt_test - mean

features = nn.Sequential(nn.Conv2d(3, 32, 5), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 48, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten())
labels = nn.Sequential(nn.Linear(768, 100), nn.ReLU(), nn.Linear(100, 100), nn.ReLU(), nn.Linear(100, 10))
domains = nn.Sequential(nn.Linear(768, 100), nn.ReLU(), nn.Linear(100, 1))


class Reversal(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, lam):
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return -ctx.lam * grad, None


parameters = [*features.parameters(), *labels.parameters(), *domains.parameters()]
optimizer = torch.optim.SGD(parameters, lr=0.01, momentum=0.9)
batch = 64


def batches(n):
    while True:
        order = rng.permutation(n)
        for i in range(0, n - batch + 1, batch):
            yield order[i:i + batch]


source_batches, target_batches = batches(len(xs)), batches(len(xt))
domain_truth = torch.cat([torch.zeros(batch), torch.ones(batch)])
for step in range(steps):
    p = step / steps
    lam = lambda_max * (2.0 / (1.0 + np.exp(-10.0 * p)) - 1.0) if mode == "dann" else 0.0
    for group in optimizer.param_groups:
        group["lr"] = 0.01 / (1.0 + 10.0 * p) ** 0.75
    i, j = next(source_batches), next(target_batches)
    f = features(torch.cat([xs[i], xt[j]]))
    class_loss = F.cross_entropy(labels(f[:batch]), ys[i])
    domain_logits = domains(Reversal.apply(f, lam)).squeeze(1)
    domain_loss = F.binary_cross_entropy_with_logits(domain_logits, domain_truth)
    optimizer.zero_grad()
    (class_loss + domain_loss).backward()
    optimizer.step()
    if (step + 1) % max(1, steps // 5) == 0 or step + 1 == steps:
        with torch.no_grad():
            accuracy = (labels(features(xt_test)).argmax(1) == yt_test).float().mean().item()
            train_accuracy = (labels(features(xt)).argmax(1) == yt).float().mean().item()
            domain_accuracy = ((domain_logits > 0).float() == domain_truth).float().mean().item()
        print(f"step {step + 1} target_train_accuracy {train_accuracy:.4f} target_accuracy {accuracy:.4f} "
              f"domain_accuracy {domain_accuracy:.2f} lambda {lam:.2f}", flush=True)
'''


def export_arrays(source, target, path):
    """The pair's arrays as `keras-gen train --image-size 28` loads them (digits resized)."""
    import numpy as np

    from keras_gen import data

    def load(name, split):
        return data.load_arrays(name, split, image_size=28)

    (sx, sy), (tx, ty), (ttx, tty) = load(source, "train"), load(target, "train"), load(target, "test")
    np.savez(path, source_x=sx, source_y=sy, target_x=tx, target_y=ty, target_test_x=ttx, target_test_y=tty)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--torch-python", default=str(Path.home() / ".venvs" / "torchref" / "bin" / "python"),
                   type=executable)
    p.add_argument("--pair", default="mnist5k:mnistm5k", type=domain_pair)
    p.add_argument("--steps", type=positive_int, default=3000)
    p.add_argument("--seeds", type=int_range(0, 2**31 - 1), nargs="+", default=[0])
    p.add_argument("--lambda-max", type=non_negative_float, default=1.0,
                   help="the λ schedule's final value (the paper: 1); choose it on a pair whose target is not "
                        "a reported pair's target (never on a reported target's test split)")
    args = p.parse_args(argv)
    source, target = args.pair.split(":")
    from keras_gen.hardware import describe_cpu

    results = {"source-only": [], "dann": []}
    with tempfile.TemporaryDirectory() as tmp:
        arrays = Path(tmp) / "pair.npz"
        export_arrays(source, target, arrays)
        script = Path(tmp) / "dann_torch.py"
        script.write_text(TORCH_RUN)
        for seed in args.seeds:
            for mode in results:
                out = subprocess.run([args.torch_python, str(script), str(arrays), mode, str(args.steps), str(seed),
                                      str(args.lambda_max)],
                                     capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"the PyTorch run failed:\n{out.stderr[-2000:]}")
                print(f"{mode} seed {seed}:\n  " + out.stdout.strip().replace("\n", "\n  "), flush=True)
                results[mode].append(float(out.stdout.split("target_accuracy ")[-1].split()[0]))

    def cell(values):
        if len(values) == 1:
            return f"{100 * values[0]:.1f}"
        return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.stdev(values):.1f}"

    print(f"\n{source} -> {target}, {args.steps} steps, seeds {args.seeds}, λ up to {args.lambda_max}: target "
          f"test accuracy (%) after the last step; {time.strftime('%Y-%m-%d')}, {describe_cpu()}, PyTorch\n")
    print("| source-only (λ = 0) | DANN |\n| --- | --- |")
    print(f"| {cell(results['source-only'])} | {cell(results['dann'])} |")


if __name__ == "__main__":
    main()
