"""Generation speed on the CPU: PyTorch (`load_generator(...).images`, fashiongan's sampling
path) against ONNX Runtime on `fashiongan export --format onnx` of the same generator, at batch
1 (latency) and 1,000 (throughput), best of --repeats. Also prints the largest difference.
Usage: python benchmarks/onnx_speed.py RUN_DIR [--threads 2] [--repeats 5]"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fashiongan.onnx_export import export_onnx
from fashiongan.sampling import latents, load_generator


def best(fn, repeats: int) -> float:
    fn()  # warm-up: allocations, oneDNN primitive creation, ORT's first-run planning
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    import onnxruntime as ort

    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    gen = load_generator(args.run)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "g.onnx"
        check = export_onnx(gen, path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    gen = load_generator(args.run)  # export moved G to contiguous format; reload as sampled
    print(f"{args.run}: {sum(p.numel() for p in gen.G.parameters()) / 1e6:.2f} M parameters, "
          f"{args.threads} threads, ONNX check {check}")  # fmt: skip
    for n in (1, 1000):
        z = latents(0, n, gen.z_dim)
        y = torch.arange(n) % gen.n_classes if gen.conditional else None
        feeds = {"z": z.numpy(), **({"labels": y.numpy()} if y is not None else {})}
        t_torch = best(lambda z=z, y=y: gen.images(z, y), args.repeats)
        t_ort = best(lambda feeds=feeds: session.run(["pixels"], feeds), args.repeats)
        ours = gen.images(z, y).numpy().astype(int)
        same = np.abs(session.run(["pixels"], feeds)[0][:, 0].astype(int) - ours).max()
        print(
            f"batch {n:5d}: PyTorch {t_torch * 1e3:8.2f} ms ({n / t_torch:9.0f} img/s), ONNX "
            f"Runtime {t_ort * 1e3:8.2f} ms ({n / t_ort:9.0f} img/s), max pixel diff {same}"
        )


if __name__ == "__main__":
    main()
