"""The regulariser registry. Each module below registers its regularisers; a new one is a new
module and its line here. See base.py for what a regulariser provides."""

from fashiongan.regularizers import dragan, gradient  # noqa: F401 - register
from fashiongan.regularizers.base import REGULARIZERS, Regularizer, parse_reg

__all__ = ["REGULARIZERS", "Regularizer", "parse_reg"]
