"""Run every preset (50 steps) and every loss × conditioning × model (20 steps) on the real
Fashion-MNIST and print a table of train throughput. A smoke check of the "done when" list of
the core issue, and a first speed table; not a test (it takes several minutes).

    python benchmarks/recipes.py [--presets-only] [--json out.json] [--md table.md]

Throughput counts the whole budget from the first step (warm-up included), not the writes
at the end of the run. Nothing else should run on the machine meanwhile.
"""

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

from fashiongan.config import RunConfig, from_dict, load_preset, preset_names
from fashiongan.losses import LOSSES
from fashiongan.models import CONDITIONINGS, MODELS
from fashiongan.training.loop import Trainer


def run(cfg: RunConfig, steps: int, root: Path, name: str) -> dict:
    cfg.train.steps, cfg.train.epochs, cfg.train.max_time = steps, 0, 0
    cfg.log.progress, cfg.log.log_every = False, 10**9
    trainer = Trainer(cfg, root / name)
    t0 = time.perf_counter()
    result = trainer.run()
    wall = time.perf_counter() - t0
    return {
        "name": name,
        "steps": result.step,
        "kimg": result.nimg / 1000,
        "img_per_s": result.nimg / result.seconds,
        "wall_s": wall,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets-only", action="store_true")
    p.add_argument("--json", help="also write the rows as JSON here")
    p.add_argument("--md", help="also write the Markdown table here")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for preset in preset_names():
            rows.append(run(from_dict(load_preset(preset)), 50, root, f"preset {preset}"))
            print(rows[-1], file=sys.stderr, flush=True)
        if not args.presets_only:
            for model, cond, loss in itertools.product(
                MODELS.names(), CONDITIONINGS, LOSSES.names()
            ):
                cfg = RunConfig()
                cfg.model.model, cfg.model.cond, cfg.loss.loss = model, cond, loss
                rows.append(run(cfg, 20, root, f"{model} {cond} {loss}"))
                print(rows[-1], file=sys.stderr, flush=True)
    table = ["| run | steps | kimg | train img/s |", "| --- | ---: | ---: | ---: |"]
    for r in rows:
        table.append(f"| {r['name']} | {r['steps']} | {r['kimg']:.1f} | {r['img_per_s']:.0f} |")
    print("\n".join(table))
    if args.md:
        Path(args.md).write_text("\n".join(table) + "\n")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
