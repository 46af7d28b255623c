"""MNIST and Fashion-MNIST: finding, downloading, reading and splitting them.

>>> from jaxmlp.data import load_dataset
>>> ds = load_dataset("mnist")            # doctest: +SKIP
>>> ds.train.images.shape, ds.train.labels.dtype  # doctest: +SKIP
((50000, 784), dtype('int32'))
"""

from jaxmlp.data.download import FileStatus, download_dataset
from jaxmlp.data.idx import read_idx, read_idx_images, read_idx_labels, read_idx_pair
from jaxmlp.data.info import dataset_summary, format_summary
from jaxmlp.data.load import load_dataset
from jaxmlp.data.seed_pickle import load_seed_pickle
from jaxmlp.data.sources import DATASETS, SPECS, DatasetSpec, user_cache_dir
from jaxmlp.data.splits import IMAGE_SHAPE, Dataset, Split

__all__ = [
    "DATASETS",
    "IMAGE_SHAPE",
    "SPECS",
    "Dataset",
    "DatasetSpec",
    "FileStatus",
    "Split",
    "dataset_summary",
    "download_dataset",
    "format_summary",
    "load_dataset",
    "load_seed_pickle",
    "read_idx",
    "read_idx_images",
    "read_idx_labels",
    "read_idx_pair",
    "user_cache_dir",
]
