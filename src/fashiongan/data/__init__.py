"""Data: IDX and Kaggle-CSV readers/writers, the official download, in-memory data sets.

The names below come from data/datasets.py, imported when first asked for (it loads torch, and
the torch-free modules of this package, such as the download, must not)."""

__all__ = [
    "CLASS_NAME_SETS",
    "FASHION_CLASSES",
    "N_CLASSES",
    "Batcher",
    "ImageDataset",
    "find_data",
    "load_dataset",
    "parse_class",
    "to_float",
    "to_uint8",
]


def __getattr__(name: str):
    if name in __all__:
        from fashiongan.data import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module 'fashiongan.data' has no attribute {name!r}")
