"""transformers' own common test mixins, from the source distribution of the installed transformers version.

`load()` returns the modules `test_modeling_common`, `test_configuration_common`, `test_backbone_common`,
`test_image_processing_common` and `test_processing_common` of `transformers==<installed version>`, so that our
classes are held to the contract transformers holds its own models to (tests/test_transformers_common.py).

The sdist is fetched once with `pip download --no-deps --no-binary :all:` into
`.cache/transformers-tests/<version>/` (gitignored; delete it to fetch again); only its `tests/*_common.py` files
are kept, as the package `transformers_tests` (their relative imports need a package). The sdist does not ship
the helper modules those files import from the rest of transformers' repository; `STAND_INS` provides them, each
one documented below.
Where the download is impossible (no network, no pip) `load()` raises `Unavailable` with the reason, which the
test module turns into a skip.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
import tarfile
import tempfile
import textwrap
from pathlib import Path
from types import ModuleType

import transformers

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO_ROOT / ".cache" / "transformers-tests"
PACKAGE = "transformers_tests"
COMMON_FILES = (
    "test_modeling_common.py",
    "test_configuration_common.py",
    "test_backbone_common.py",
    "test_image_processing_common.py",
    "test_processing_common.py",
)

# Modules the common files import that the sdist does not ship (paths relative to the cache folder).
STAND_INS = {
    # test_configuration_common: the common `PreTrainedConfig` keyword arguments with non-default values. This is
    # transformers 5's `tests/utils/test_configuration_utils.config_common_kwargs` (the v5 base config keeps
    # only these fields).
    f"{PACKAGE}/utils/test_configuration_utils.py": '''
        config_common_kwargs = {
            "return_dict": False,
            "output_hidden_states": True,
            "output_attentions": True,
            "dtype": "float16",
            "chunk_size_feed_forward": 5,
            "architectures": ["BertModel"],
            "id2label": {0: "label"},
            "label2id": {"label": "0"},
            "problem_type": "regression",
        }
    ''',
    # test_modeling_common: `ModelTesterMixin` derives from `ExportTesterMixin` (transformers' torch.export tests of
    # its own models); evit-hf tests its export graphs itself (tests/test_export_*.py).
    f"{PACKAGE}/exporters/test_export.py": '''
        class ExportTesterMixin:
            """Stand-in: transformers' export tests are not in its sdist."""
    ''',
    # test_modeling_common: used only in `issubclass` checks for generative models (ours are not).
    f"{PACKAGE}/generation/test_utils.py": '''
        class GenerationTesterMixin:
            """Stand-in: transformers' generation tests are not in its sdist."""
    ''',
    # test_image_processing_common / test_processing_common: `url_to_local_path` maps the Hub URLs of test images
    # to files of transformers' CI cache. Offline, the same kind of data is made locally: photographs scikit-image
    # ships for the images, and label maps of the image's size (values 0-149, as ADE20K's) for the `.png`
    # segmentation maps; other media (video, audio) keep their URL (no test of ours reads them).
    "utils/fetch_hub_objects_for_ci.py": '''
        from pathlib import Path

        import numpy as np
        from PIL import Image

        _FIXTURES = Path(__file__).resolve().parent / "fixtures"
        _PHOTOS = ("chelsea", "coffee", "astronaut", "rocket")


        def _photo(index):
            from skimage import data

            return getattr(data, _PHOTOS[index % len(_PHOTOS)])()


        def url_to_local_path(url, return_url_if_not_found=True):
            name = url.rsplit("/", 1)[-1]
            stem, _, suffix = name.rpartition(".")
            if suffix not in ("jpg", "jpeg", "png"):
                return url
            path = _FIXTURES / name
            if not path.exists():
                _FIXTURES.mkdir(parents=True, exist_ok=True)
                index = sum(map(ord, stem))
                photo = _photo(index)
                if "ADE_" in stem and suffix == "png":  # the label map of the ADE_ image of the same stem
                    gray = photo.mean(axis=-1)
                    labels = (gray / 256.0 * 150).astype(np.uint8)
                    Image.fromarray(labels).save(path)
                else:
                    Image.fromarray(photo).convert("RGB").save(path)
            return str(path)
    ''',
}


class Unavailable(RuntimeError):
    """transformers' common test files could not be fetched (the reason is the message)."""


def version_dir(version: str | None = None) -> Path:
    """The cache folder of one transformers version's common tests."""
    return CACHE_DIR / (version or transformers.__version__)


def _download_tests(version: str, target: Path) -> None:
    """Extract `tests/*_common.py` of the `transformers==version` sdist into `target/PACKAGE/`."""
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   "--disable-pip-version-check", "-q", "--retries", "1", "--timeout", "30", "-d", tmp,
                   f"transformers=={version}"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise Unavailable(f"`pip download transformers=={version}` failed: {error}") from error
        archives = list(Path(tmp).glob("transformers-*.tar.gz"))
        if result.returncode != 0 or not archives:
            output = (result.stderr or result.stdout).strip()
            errors = [line for line in output.splitlines() if line.startswith("ERROR")]
            reason = " ".join(errors)[:500] if errors else output[-500:]
            raise Unavailable(f"`pip download --no-binary :all: transformers=={version}` failed: {reason}")
        package = target / PACKAGE
        package.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archives[0]) as archive:
            members = {Path(m.name).name: m for m in archive.getmembers()
                       if m.isfile() and Path(m.name).parent.name == "tests" and Path(m.name).name in COMMON_FILES}
            missing = sorted(set(COMMON_FILES) - set(members))
            if missing:
                raise Unavailable(f"the transformers {version} sdist has no tests/{', '.join(missing)}")
            for name, member in members.items():
                (package / name).write_bytes(archive.extractfile(member).read())


def _write_stand_ins(target: Path) -> None:
    for relative, source in STAND_INS.items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if relative.startswith(f"{PACKAGE}/"):  # a subpackage of the test package (the `utils` folder is not)
            (path.parent / "__init__.py").touch()
        path.write_text(textwrap.dedent(source).lstrip())
    (target / PACKAGE / "__init__.py").touch()


def load() -> dict[str, ModuleType]:
    """The common test modules of the installed transformers, by file stem (fetched on first use)."""
    if int(transformers.__version__.split(".")[0]) < 5:
        raise Unavailable(f"the common-test glue targets transformers 5's test mixins (installed: "
                          f"{transformers.__version__})")
    target = version_dir()
    if not target.is_dir():
        # Built aside and renamed into place: concurrent sessions (pytest-xdist workers) never see half a folder.
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=CACHE_DIR))
        try:
            _download_tests(transformers.__version__, building)
            _write_stand_ins(building)
            try:
                building.rename(target)
            except OSError:  # another session finished first
                pass
        finally:
            shutil.rmtree(building, ignore_errors=True)
    if str(target) not in sys.path:
        sys.path.append(str(target))
    try:
        return {Path(name).stem: importlib.import_module(f"{PACKAGE}.{Path(name).stem}") for name in COMMON_FILES}
    except ImportError as error:
        raise Unavailable(f"transformers {transformers.__version__}'s common tests need {error.name!r}: "
                          f"{error}") from error


__all__ = ["CACHE_DIR", "COMMON_FILES", "STAND_INS", "Unavailable", "load", "version_dir"]
