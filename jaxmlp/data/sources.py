"""The known datasets, their files and mirrors, and the places data is looked for.

Data is taken from the first of: the ``data_dir`` argument (``--data-dir``), the
``JAXMLP_DATA_DIR`` environment variable, the user cache
(``$XDG_CACHE_HOME/jaxmlp/<dataset>`` or ``~/.cache/jaxmlp/<dataset>``), the system
dataset directories (``/usr/share/datasets/<dataset>``, as Debian's
``dataset-fashion-mnist`` installs), and finally a download into the user cache.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

from jaxmlp.errors import ConfigError, DatasetError

DATA_DIR_ENV = "JAXMLP_DATA_DIR"
SYSTEM_DATASET_ROOTS: tuple[Path, ...] = (Path("/usr/share/datasets"),)
ROLES = ("train_images", "train_labels", "test_images", "test_labels")
OFFICIAL_STEMS = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class DatasetSpec:
    """What is known about one dataset: its classes, files, checksums and mirrors.

    Attributes:
        name: The name users type, e.g. ``"fashion-mnist"``.
        class_names: The name of each class, by label.
        sha256: The SHA-256 of each official ``.gz`` file, by file name.
        content_sha256: The SHA-256 of each file's decompressed IDX content, by file name;
            it recognises the same data recompressed (as Debian ships it) or uncompressed.
        copies_sha256: The SHA-256 of known recompressed copies of each ``.gz`` file, by
            file name: recognised without decompressing them.
        mirrors: Base URLs tried in order; each file's URL is base + file name.
    """

    name: str
    class_names: tuple[str, ...]
    sha256: dict[str, str]
    content_sha256: dict[str, str]
    mirrors: tuple[str, ...]
    copies_sha256: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def mirrors_env(self) -> str:
        """The environment variable that overrides :attr:`mirrors`, comma separated."""
        return "JAXMLP_" + self.name.upper().replace("-", "_") + "_MIRRORS"

    @property
    def files(self) -> tuple[str, ...]:
        """The official ``.gz`` file names, in the order of :data:`ROLES`."""
        return tuple(OFFICIAL_STEMS[role] + ".gz" for role in ROLES)


SPECS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        class_names=tuple(str(digit) for digit in range(10)),
        # From the SHA256SUMS of the official files (shared/datasets/mnist).
        sha256={
            "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        # Computed from the official files above, decompressed.
        content_sha256={
            "train-images-idx3-ubyte.gz": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels-idx1-ubyte.gz": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images-idx3-ubyte.gz": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels-idx1-ubyte.gz": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        mirrors=(
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        # The official files' published SHA-256s, listed with the MD5s of Zalando's README.
        sha256={
            "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        # Computed from Debian's dataset-fashion-mnist, decompressed: Debian recompressed
        # the official files without their names (each .gz is 24 bytes shorter, the length
        # of the stored name), so the data inside are the official data.
        content_sha256={
            "train-images-idx3-ubyte.gz": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels-idx1-ubyte.gz": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images-idx3-ubyte.gz": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels-idx1-ubyte.gz": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        # Debian's dataset-fashion-mnist 0.0~git20200523.55506a9-1, as installed.
        copies_sha256={
            "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
            "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
            "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
            "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        },
        mirrors=(
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
    ),
}
DATASETS = tuple(SPECS)


def get_spec(name: str) -> DatasetSpec:
    """Returns the spec of dataset ``name`` or raises ConfigError naming the choices."""
    try:
        return SPECS[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"must be one of {', '.join(DATASETS)}, got {name!r}", setting="dataset"
        ) from None


def mirrors_for(
    spec: DatasetSpec, mirrors: tuple[str, ...] | list[str] | None = None
) -> tuple[str, ...]:
    """Returns ``mirrors`` if given, else the spec's env variable's list, else its defaults."""
    if mirrors is None:
        from_env = os.environ.get(spec.mirrors_env, "")
        mirrors = [url.strip() for url in from_env.split(",") if url.strip()] or spec.mirrors
    return tuple(url if url.endswith("/") else url + "/" for url in mirrors)


def user_cache_dir(name: str) -> Path:
    """Returns ``$XDG_CACHE_HOME/jaxmlp/<name>``, or ``~/.cache/jaxmlp/<name>``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "jaxmlp" / name


def system_dirs(name: str) -> list[Path]:
    """Returns the system dataset directories that could hold dataset ``name``."""
    return [root / name for root in SYSTEM_DATASET_ROOTS]


def candidate_names(role: str) -> list[str]:
    """File names accepted for ``role``: official, with a dot before ``idx``, gz or raw."""
    stem = OFFICIAL_STEMS[role]
    dotted = stem.replace("-idx", ".idx")
    return [stem + ".gz", stem, dotted + ".gz", dotted]


def find_idx_files(directory: Path) -> dict[str, Path]:
    """Returns the IDX file found in ``directory`` for each role; missing roles are absent."""
    found = {}
    for role in ROLES:
        for name in candidate_names(role):
            if (directory / name).is_file():
                found[role] = directory / name
                break
    return found


def is_pickle_path(path: Path) -> bool:
    """Whether ``path`` names a pickle file (``.pkl``, ``.pkl.gz``, ``.pickle``)."""
    return path.name.endswith((".pkl", ".pkl.gz", ".pickle", ".pickle.gz"))


def locate_in_given_path(path: Path, name: str, origin: str) -> Path | dict[str, Path]:
    """Resolves a user-given path: a pickle file, or a folder of IDX files (``<name>/`` first).

    Args:
        path: The path given by ``--data-dir`` or ``JAXMLP_DATA_DIR``.
        name: The dataset's name, tried as a subdirectory of ``path``.
        origin: How the path was given, for error messages.

    Raises:
        DatasetError: The path does not exist or lacks some of the four files.
    """
    if not path.exists():
        raise DatasetError(f"{origin} {path} does not exist")
    if path.is_file():
        if is_pickle_path(path):
            return path
        raise DatasetError(
            f"{origin} {path} is a file but not a .pkl.gz; give a directory of IDX files"
        )
    for directory in (path / name, path):
        found = find_idx_files(directory)
        if len(found) == len(ROLES):
            return found
    found = find_idx_files(path)
    missing = ", ".join(OFFICIAL_STEMS[role] + "[.gz]" for role in ROLES if role not in found)
    raise DatasetError(f"{origin} {path} lacks the {name} IDX files {missing}")
