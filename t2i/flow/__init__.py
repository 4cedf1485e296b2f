"""The maths, and nothing but tensors: the noise path (`paths`), what a network is trained to
predict and how each prediction reads as a velocity (`objectives`, few-step `fewstep`), and the
ODE/SDE solvers over that velocity with guidance (`samplers`). Time: t = 0 noise, t = 1 data.
"""

from .fewstep import FEW_STEP
from .objectives import OBJECTIVES, build_objective
from .paths import interpolate, time_grid
from .samplers import SAMPLERS, get_sampler, guidance

__all__ = ["FEW_STEP", "OBJECTIVES", "SAMPLERS", "build_objective", "get_sampler", "guidance",
           "interpolate", "time_grid"]
