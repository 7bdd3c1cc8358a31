"""The code bundle every step runs: deterministic bytes, the right files, and a processing
entrypoint that really unpacks it and starts a script."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile

from pipelines.definition import CODE_DIR, CODE_INPUT_DIR, SERVING_ENTRY_POINT, processing_entrypoint
from stacks.constructs.training_pipeline import REPO_ROOT, bundle_bytes, bundle_members


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {member.name: member for member in tar.getmembers()}


def test_bundle_bytes_depend_only_on_file_names_and_contents(tmp_path):
    # Given a copy of the bundled packages with other timestamps and permissions
    for package in ("pipelines", "platform_core"):
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    for path in tmp_path.rglob("*.py"):
        path.chmod(0o755)
        path.touch()
    # When both are bundled
    # Then the bytes are identical (so is the asset hash, and with it the template)
    assert bundle_bytes(tmp_path) == bundle_bytes(REPO_ROOT)
    # And a changed file changes them
    (tmp_path / "pipelines" / "train.py").write_text("# changed\n", encoding="utf-8")
    assert bundle_bytes(tmp_path) != bundle_bytes(REPO_ROOT)


def test_bundle_holds_the_runtime_packages_and_nothing_else():
    members = _members(bundle_bytes())
    # Then the scripts and the ground package are there, as the containers import them
    for name in ("pipelines/__init__.py", "pipelines/train.py", "pipelines/evaluate.py", "platform_core/config.py"):
        assert name in members
    # And neither the synth-time definition builder nor caches travel
    assert "pipelines/definition.py" not in members
    assert not [name for name in members if "__pycache__" in name or name.endswith(".pyc")]
    # And every member is a plain file with fixed metadata
    assert {(m.mtime, m.uid, m.gid, m.mode, m.type) for m in members.values()} == {(0, 0, 0, 0o644, tarfile.REGTYPE)}
    # And besides the repository's files there is only the serving entry point at the root
    assert sorted(set(members) - {SERVING_ENTRY_POINT}) == [p.as_posix() for p in bundle_members()]


def test_serving_entry_point_exposes_the_inference_handlers_from_the_unpacked_bundle(tmp_path):
    # Given the bundle unpacked as the serving container's script mode does (into its code folder)
    with tarfile.open(fileobj=io.BytesIO(bundle_bytes()), mode="r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    # When SAGEMAKER_PROGRAM is imported from there, with nothing else importable
    probe = "import inference; print(sorted(n for n in inference.__all__ if callable(getattr(inference, n))))"
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    # Then it offers the four handlers of pipelines/inference.py
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['input_fn', 'model_fn', 'output_fn', 'predict_fn']"


def test_processing_entrypoint_unpacks_the_bundle_and_runs_the_script_as_a_file(tmp_path):
    # Given the bundle where the processing job puts it, and the entrypoint pointed at temporary folders
    code_input, code_dir = tmp_path / "input", tmp_path / "code"
    code_input.mkdir()
    (code_input / "0123abcd.gz").write_bytes(bundle_bytes())  # the asset's key, whatever its suffix
    shell, flag, command, name = processing_entrypoint("preprocess")
    command = command.replace(CODE_INPUT_DIR, str(code_input)).replace(CODE_DIR, str(code_dir))
    command = command.replace("python3", sys.executable)
    # When it runs with the step's arguments
    result = subprocess.run(
        [shell, flag, command, name, "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,  # nothing importable from the repository: only the unpacked bundle
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    # Then preprocess.py started from the unpacked bundle and parsed them
    assert result.returncode == 0, result.stderr
    assert "--label-horizon-days" in result.stdout
    assert (code_dir / "pipelines" / "preprocess.py").is_file()
