"""What R1 costs per training step: the default without R1, with lazy R1 (the default: γ 0.1
every 16 steps) and with R1 every step, in one process, 160-step windows taken in turn (5
each, after 32 warm-up steps), median img/s.

    python benchmarks/lazy_r1_cost.py

Nothing else should run on the machine meanwhile.
"""

import statistics
import tempfile
import time

from fashiongan.config import RunConfig
from fashiongan.training.loop import Trainer


def trainer(r1: float, every: int, run_dir: str) -> Trainer:
    cfg = RunConfig()
    cfg.loss.r1, cfg.loss.r1_every, cfg.log.progress = r1, every, False
    cfg.train.epochs, cfg.train.steps = 0, 10**9
    return Trainer(cfg, run_dir)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {
            "no R1": trainer(0.0, 16, f"{tmp}/a"),
            "lazy R1 (default)": trainer(0.1, 16, f"{tmp}/b"),
            "R1 every step": trainer(0.1, 1, f"{tmp}/c"),
        }
        speeds: dict[str, list[float]] = {k: [] for k in trainers}
        for t in trainers.values():
            for _ in range(32):
                t.train_step()
        for _ in range(5):
            for name, t in trainers.items():
                start = time.perf_counter()
                for _ in range(160):
                    t.train_step()
                speeds[name].append(160 * t.cfg.train.batch_size / (time.perf_counter() - start))
    for name, v in speeds.items():
        windows = ", ".join(f"{x:.0f}" for x in v)
        print(f"{name:18s} median {statistics.median(v):6.0f} img/s  ({windows})")


if __name__ == "__main__":
    main()
