"""What every layer above may use and no layer owns: the runtime (device, precision decided by
timing the real step, distributed helpers), atomic files and cache folders, and image grids.
"""

from .fsutil import atomic_directory, cache_dir, cache_root, write_text_atomic
from .images import make_grid, save_images
from .runtime import autocast, distributed, resolve_device, resolve_precision

__all__ = ["atomic_directory", "autocast", "cache_dir", "cache_root", "distributed", "make_grid",
           "resolve_device", "resolve_precision", "save_images", "write_text_atomic"]
