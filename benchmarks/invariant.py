"""The refactoring invariant: fingerprints of what training, resuming, generating and evaluating
produce, recorded once and checked after any change that must not change behaviour.

    python benchmarks/invariant.py record benchmarks/invariant-full-cpu.json --size full
    python benchmarks/invariant.py check benchmarks/invariant-full-cpu.json
    python benchmarks/invariant.py crossload /tmp/before/src

`crossload OTHER_SRC` checks that checkpoints load both ways between this tree and another
source tree (e.g. a `git worktree` of the commit before a change): a run trained 150 steps by
one and resumed to 300 by the other ends with the rows and weights of a straight 300-step run,
in both directions, and `generate` reads the other tree's final checkpoint.

For each case (the default, cdcgan-bce, cgan-wgan-gp, and rpgan with R1 + R2 and EMA) it trains
300 steps with fixed seeds, trains 150 and resumes to 300, generates 100 images from the final
checkpoint and evaluates the run. A fingerprint holds the sha256 of the training rows of
metrics.jsonl (every key but the timing ones), of the final weights (G, D, G_ema), of the
generated images and labels, the checkpoint's top-level keys, and evaluate's metrics, exactly.
The resumed run must give the straight run's rows and weights bit for bit.

Float results depend on which SIMD kernels a CPU picks, so fingerprints are only comparable on
one kind of machine. `--size small` (what the test suite checks) runs narrow models on a data
subset in a fresh interpreter with portable kernels: ATen's default (non-vector) kernels, oneDNN
off (its JIT kernels choose their blocking, and so their summation order, from the CPU's ISA and
cache sizes; ATen's im2col convolutions run instead), MKL in its conditional-numerical-
reproducibility mode (MKL_CBWR=COMPATIBLE) and one thread, so any x86-64 machine computes the
same bits. The `full` size runs the presets as they are, natively: record it on the machine that
checks it.
"""

import argparse
import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

# run in a fresh interpreter with these set, before torch loads its kernels
PORTABLE_ENV = {
    "ATEN_CPU_CAPABILITY": "default",
    "ONEDNN_MAX_CPU_ISA": "SSE41",
    "MKL_CBWR": "COMPATIBLE",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
TIMING_KEYS = {"img_per_s", "eval_seconds"}
VOLATILE_PROVENANCE = {"source", "seconds", "time"}  # temp paths and clocks

CASES = {
    "default": ["--preset", "default"],
    "cdcgan-bce": ["--preset", "cdcgan-bce"],
    "cgan-wgan-gp": ["--preset", "cgan-wgan-gp"],
    "rpgan-r1r2-ema": ["--preset", "default", "--loss", "rpgan", "--r1", "0.2", "--r2", "0.2"],
}
SIZES = {
    # narrow models on 2,000 images: seconds per case under the portable kernels
    "small": {
        "train": ["--width", "0.25", "--d-width", "0.25", "--batch-size", "16", "--subset", "2000"],
        "ema": ["--ema-kimg", "0.5"],
        "evaluate": ["--num-samples", "200", "--metrics", "fid,is,label_accuracy,kid"],
    },
    "full": {
        "train": [],
        "ema": [],
        "evaluate": ["--num-samples", "2000", "--metrics", "fid,is,label_accuracy,kid,prdc"],
    },
}


def portable_env() -> dict:
    return {**os.environ, **PORTABLE_ENV}


def portable() -> bool:
    """Whether this interpreter runs the portable kernels (then oneDNN is switched off too)."""
    return all(os.environ.get(k) == v for k, v in PORTABLE_ENV.items())


def sha(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p)
    return h.hexdigest()


def train_rows(run: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in TIMING_KEYS} for r in rows if "loss_d" in r]


def weights_digest(state: dict) -> str:
    import torch

    parts = []
    for net in ("G", "D", "G_ema"):
        for name, t in (state.get(net) or {}).items():
            if isinstance(t, torch.Tensor):
                parts += [f"{net}.{name}".encode(), t.detach().cpu().contiguous().numpy().tobytes()]
    return sha(*parts)


def cli(*argv: str) -> None:
    from fashiongan.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rc = main([str(a) for a in argv])
    if rc:
        raise SystemExit(f"fashiongan {' '.join(map(str, argv))} exited {rc}")


def fingerprint(name: str, size: str, work: Path, data: str | None) -> dict:
    import numpy as np
    import torch

    s = SIZES[size]
    flags = [*CASES[name], *s["train"], "--seed", "0", "--no-progress", "--log-every", "10"]
    flags += ["--ckpt-every", "150", "--keep", "0", "--sample-every", "100"]
    flags += s["ema"] if name in ("default", "rpgan-r1r2-ema") else []
    flags += ["--data", data] if data else []
    straight, resumed = work / f"{name}-straight", work / f"{name}-resumed"
    cli("train", *flags, "--steps", "300", "--out", straight)
    cli("train", *flags, "--steps", "150", "--out", resumed)
    cli("train", "--resume", resumed, "--steps", "300", "--no-progress")
    final = torch.load(
        straight / "checkpoints" / "final.pt", map_location="cpu", weights_only=False
    )
    again = torch.load(resumed / "checkpoints" / "final.pt", map_location="cpu", weights_only=False)
    rows = train_rows(straight)
    out = {
        "rows": sha(json.dumps(rows).encode()),
        "n_rows": len(rows),
        "last_row": rows[-1],
        "weights": weights_digest(final),
        "checkpoint_keys": sorted(final),
        "resume_rows_equal": train_rows(resumed) == rows,
        "resume_weights_equal": weights_digest(again) == weights_digest(final),
    }
    npz = work / f"{name}.npz"
    cli("generate", straight, "--out", npz, "--num-samples", "100", "--seed", "3")
    with np.load(npz) as z:
        out["generated"] = sha(*(z[k].tobytes() for k in sorted(z.files)))
    report = work / f"{name}-eval"
    extra = ["--data", data] if data else []
    cli("evaluate", straight, *s["evaluate"], "--seed", "1", "--out", report, *extra)
    metrics = json.loads((report / "metrics.json").read_text())
    out["evaluate"] = stable(metrics)
    return out


def stable(metrics: dict) -> dict:
    """evaluate's metrics.json without what differs between two identical runs."""
    out = dict(sorted(metrics.items()))
    if isinstance(out.get("provenance"), dict):
        prov = out["provenance"]
        out["provenance"] = {k: v for k, v in prov.items() if k not in VOLATILE_PROVENANCE}
    return out


def _cli_in(src: str | None, *argv) -> None:
    """`fashiongan ARGV` in a fresh interpreter whose package comes from `src` (None: this)."""
    env = {**os.environ, **({"PYTHONPATH": src} if src else {})}
    code = "import sys; from fashiongan.cli import main; sys.exit(main(sys.argv[1:]))"
    cmd = [sys.executable, "-c", code, *map(str, argv)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode:
        tree = src or "this tree"
        raise SystemExit(f"{tree}: fashiongan {argv[0]} failed: {done.stderr.strip()[-500:]}")


def crossload(other: str, data: str | None) -> list[str]:
    """Checkpoints written by one tree resume and generate in the other, bit for bit."""
    import numpy as np
    import torch

    problems = []
    flags = ["--preset", "default", *SIZES["small"]["train"], "--ema-kimg", "0.5", "--seed", "0"]
    flags += ["--no-progress", "--log-every", "10", "--ckpt-every", "150", "--keep", "0"]
    flags += ["--data", data] if data else []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        _cli_in(None, "train", *flags, "--steps", "300", "--out", root / "straight")
        want_rows = train_rows(root / "straight")
        final = root / "straight" / "checkpoints" / "final.pt"
        want = weights_digest(torch.load(final, weights_only=False))
        for first, second, label in ((other, None, "other → this"), (None, other, "this → other")):
            run = root / label.replace(" ", "")
            _cli_in(first, "train", *flags, "--steps", "150", "--out", run)
            _cli_in(second, "train", "--resume", run, "--steps", "300", "--no-progress")
            got = weights_digest(torch.load(run / "checkpoints" / "final.pt", weights_only=False))
            if train_rows(run) != want_rows or got != want:
                problems.append(f"{label}: the resumed run differs from the straight one")
            for src, name in ((first, "a"), (second, "b")):
                _cli_in(src, "generate", run, "--out", root / f"{name}.npz", "--seed", "3")
            with np.load(root / "a.npz") as a, np.load(root / "b.npz") as b:
                if not all(np.array_equal(a[k], b[k]) for k in a.files):
                    problems.append(f"{label}: the two trees generate other images")
    return problems


def run_all(size: str, cases: list[str], data: str | None) -> dict:
    import torch

    from fashiongan._version import __version__

    if portable():
        torch.backends.mkldnn.enabled = False
    result = {"size": size, "torch": torch.__version__, "fashiongan": __version__, "cases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        # reference features computed here, with this run's kernels, not read from a cache
        os.environ["FASHIONGAN_CACHE"] = str(Path(tmp) / "cache")
        for name in cases:
            result["cases"][name] = fingerprint(name, size, Path(tmp), data)
            print(f"{name}: done", file=sys.stderr)
    return result


def compare(ref: dict, now: dict) -> list[str]:
    """What differs, one line each ([] when the invariant holds)."""
    problems = []
    for name, want in ref["cases"].items():
        got = now["cases"].get(name, {})
        for key, value in want.items():
            if got.get(key) != value:
                problems.append(f"{name}: {key} was {value!r}, now {got.get(key)!r}")
        for key in ("resume_rows_equal", "resume_weights_equal"):
            if got.get(key) is not True:
                problems.append(f"{name}: {key} is {got.get(key)!r}")
    return problems


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("action", choices=("record", "check", "measure", "crossload"))
    p.add_argument("path", help="fingerprint JSON (record, check), or the other tree's source")
    p.add_argument("--size", choices=tuple(SIZES), default="small")
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--data", default=None, help="Fashion-MNIST directory (default: search path)")
    p.add_argument("--native", action="store_true", help="small size without the portable env")
    a = p.parse_args()
    size = a.size
    if a.action == "crossload":
        problems = crossload(a.path, a.data)
        print("\n".join(problems) or "checkpoints load both ways")
        return 1 if problems else 0
    if a.action == "check":
        size = json.loads(Path(a.path).read_text())["size"]
    if size == "small" and not a.native and not portable():
        # re-run in a fresh interpreter whose kernels are the portable ones
        cmd = [sys.executable, __file__, *sys.argv[1:]]
        return subprocess.call(cmd, env=portable_env())
    cases = a.cases.split(",")
    if a.action == "check":
        ref = json.loads(Path(a.path).read_text())
        cases = [c for c in cases if c in ref["cases"]]
        ref["cases"] = {c: ref["cases"][c] for c in cases}
    now = run_all(size, cases, a.data)
    if a.action == "record":
        Path(a.path).write_text(json.dumps(now, indent=1) + "\n")
        return 0
    if a.action == "measure":
        print(json.dumps(now, indent=1))
        return 0
    problems = compare(ref, now)
    for line in problems:
        print(line)
    print("invariant holds" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
