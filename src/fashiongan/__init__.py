"""fashiongan: train, sample and evaluate (conditional) DCGANs on Fashion-MNIST.

import fashiongan
run = fashiongan.train("runs/a", max_time="2m")        # the settings of `fashiongan train`
gen = fashiongan.load_generator(run.run_dir)
images = gen.sample(20, labels=["sneaker"] * 20, seed=0)  # uint8 N×28×28
fashiongan.grid(images)                                   # a PIL image (inline in Jupyter)
fashiongan.curves(run.run_dir)                            # a matplotlib Figure (inline)
result = fashiongan.evaluate(run.run_dir)                 # result.metrics, .floors, .table()

Your own images (a folder of class folders, colour, any size):
run = fashiongan.train("runs/mine", data="photos/", model="dcgan64", augment="ada")
fashiongan.train_evaluator("ev/", data="photos/")          # held-out accuracy in ev/
fashiongan.evaluate(run.run_dir, evaluator="ev/", data="photos/")
"""

from fashiongan._version import __version__

__all__ = [
    "LoadedGenerator",
    "__version__",
    "curves",
    "evaluate",
    "grid",
    "load_generator",
    "train",
    "train_evaluator",
]


def __getattr__(name: str):
    # torch-free until used (PEP 562): importing the package, or any of its torch-free modules
    # such as the CLI's parser, loads no torch; each name below imports its module when first
    # asked for
    if name in ("LoadedGenerator", "load_generator"):
        from fashiongan import sampling

        return getattr(sampling, name)
    if name == "grid":
        from fashiongan.imaging import grid

        return grid
    if name == "evaluate":
        from fashiongan.metrics.evaluate import evaluate

        return evaluate
    if name == "train_evaluator":
        from fashiongan.metrics.evaluator import evaluator_for_data

        return evaluator_for_data
    if name in ("train", "curves"):
        from fashiongan import api

        return getattr(api, name)
    raise AttributeError(f"module 'fashiongan' has no attribute {name!r}")
