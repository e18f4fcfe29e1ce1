"""Data: IDX and Kaggle-CSV readers/writers, the official download, in-memory data sets."""

from fashiongan.data.datasets import (
    CLASS_NAME_SETS,
    FASHION_CLASSES,
    N_CLASSES,
    Batcher,
    ImageDataset,
    find_data,
    load_dataset,
    parse_class,
    to_float,
    to_uint8,
)

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
