"""Lambda code packaging without Docker.

Each function's asset is a staged folder holding ``lambdas/<name>/`` and the ground package
``platform_core/``, so the import paths inside Lambda are the same as in the repository. Third-party
dependencies (``lambdas/requirements.txt``) are one layer, built for the Lambda platform by
``make lambda-deps`` with ``pip install --platform manylinux2014_x86_64 --only-binary=:all:``.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path

from stacks.constructs.staging import stage_tree

REPO_ROOT = Path(__file__).resolve().parents[2]
STAGING_ROOT = REPO_ROOT / "build" / "lambda-assets"
DEPENDENCIES_LAYER_DIR = REPO_ROOT / "build" / "lambda-deps"

_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".mypy_cache", "tests")


class MissingLambdaDependenciesError(RuntimeError):
    """The dependency layer has not been built."""


@cache
def staged_function_code(name: str) -> Path:
    """Stage ``lambdas/<name>`` with the packages it imports; returns the asset folder."""
    source = REPO_ROOT / "lambdas" / name
    if not (source / "handler.py").is_file():
        raise FileNotFoundError(f"lambdas/{name}/handler.py does not exist")

    def populate(target: Path) -> None:
        (target / "lambdas").mkdir(parents=True)
        shutil.copy2(REPO_ROOT / "lambdas" / "__init__.py", target / "lambdas" / "__init__.py")
        shutil.copytree(source, target / "lambdas" / name, ignore=_IGNORE)
        shutil.copytree(REPO_ROOT / "platform_core", target / "platform_core", ignore=_IGNORE)

    return stage_tree(STAGING_ROOT, name, populate)


def dependencies_layer_dir() -> Path:
    """The built dependency layer (``python/`` inside), or a clear error telling how to build it."""
    if not (DEPENDENCIES_LAYER_DIR / "python").is_dir():
        raise MissingLambdaDependenciesError(
            f"{DEPENDENCIES_LAYER_DIR}/python is missing: run `make lambda-deps` (it builds the "
            "Lambda dependency layer from lambdas/requirements.txt without Docker)"
        )
    return DEPENDENCIES_LAYER_DIR
