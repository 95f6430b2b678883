"""ANT: a GPU job scheduler for shared multi-GPU machines."""

__version__ = "2.0.0.dev0"
