"""The model registry: a name → the spec of its architecture. A new design of the DCGAN pattern
is one line here; a new architecture is a module with its Generator and Discriminator, built in
models/build.py."""

from fashiongan.models.dcgan import DCGANSpec
from fashiongan.registry import Registry

MODELS: Registry[DCGANSpec] = Registry("model")
MODELS.register("dcgan28")(DCGANSpec(resolution=28, base_res=7, g_mult=(2, 1), d_mult=(1, 2)))
MODELS.register("dcgan64")(
    DCGANSpec(resolution=64, base_res=4, g_mult=(8, 4, 2, 1), d_mult=(1, 2, 4, 8))
)
# 32×32, the size of CIFAR-10 and SVHN and of most DCGAN baselines on them (4 → 8 → 16 → 32)
MODELS.register("dcgan32")(DCGANSpec(resolution=32, base_res=4, g_mult=(4, 2, 1), d_mult=(1, 2, 4)))
# 128×128 for photographs: 4 → 8 → 16 → 32 → 64 → 128, capped at 8c maps (as dcgan64's widest)
MODELS.register("dcgan128")(
    DCGANSpec(resolution=128, base_res=4, g_mult=(8, 8, 4, 2, 1), d_mult=(1, 2, 4, 8, 8))
)
