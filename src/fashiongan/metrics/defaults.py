"""Every default of the metrics, stated once (torch-free: the CLI's parser reads them for its
flags' defaults and help without loading torch)."""

NUM_SAMPLES = 10_000  # images sampled from a model to judge
FID_MIN_SAMPLES = 10_000  # fewer judged images: FID is biased upward, and the report says so
PRDC_K = 5
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
IS_SPLITS = 10
MEMORIZATION_SAMPLES = 2000  # judged images searched against the 60k training images
CAS_PER_CLASS = 6000  # the real train split's size: CAS then compares with the evaluator itself
FLOOR_SEED = 0
REFERENCE_SPLITS = ("test", "train")
