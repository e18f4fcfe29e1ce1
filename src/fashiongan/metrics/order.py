"""Canonical sample order. A metric that splits or subsamples a set (IS splits, KID subsets, the
memorization draw, CAS's training batches) first sorts it by a content hash of each row, so its
value depends on which samples the set holds and on its documented seed, never on the order they
arrive in (a class-sorted PNG folder, a `generate --per-class` export)."""

import numpy as np
import torch

_CHUNK = 4096
_INT_VIEW = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def row_hash(x: torch.Tensor | np.ndarray) -> torch.Tensor:
    """int64 N: a hash of each row's bytes (any dtype, N×…). Equal rows hash equal; integer
    arithmetic that wraps, so the value of a row does not depend on its neighbours or position."""
    t = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x)
    t = t.detach().cpu().contiguous().reshape(len(t), -1)
    if t.is_floating_point():
        t = t.view(_INT_VIEW[t.element_size()])
    weights = torch.randint(
        -(2**62),
        2**62,
        (t.shape[1],),
        dtype=torch.int64,
        generator=torch.Generator().manual_seed(0),
    )
    out = [(chunk.long() * weights).sum(1) for chunk in t.split(_CHUNK)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64)


def canonical_order(x: torch.Tensor | np.ndarray, labels=None) -> torch.Tensor:
    """The permutation that sorts rows of x by (row_hash, label): int64 N. Any permutation of the
    same rows gives the same sorted rows (rows equal in content and label are interchangeable)."""
    keys = [row_hash(x).numpy()]
    if labels is not None:
        keys.insert(0, np.asarray(labels, np.int64))  # np.lexsort: the last key is the primary
    return torch.from_numpy(np.lexsort(keys))
