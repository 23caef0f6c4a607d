"""Function builds (terraform/build.py, terraform/modules/function/package.tf): the lock file and
the source zips.

The lock file is checked offline: every requirement pinned with hashes, recorded as resolved from
pyproject.toml's current dependencies, and a complete resolution. That last check walks the
dependency graph from pyproject.toml through the metadata of the packages installed in .venv
(the Makefile installs .venv at the lock's versions), with the markers of Linux CPython 3.11 and
3.12, and requires every requirement met by a pin and every pin needed. The zips are built from a
copy of the repository with a binary asset, and package.tf, which uses no provider, is planned by
Terraform itself against them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shared.api import collect, console
from tests.unit.test_terraform import ROOT, TERRAFORM, _parse, deployed_functions, module_blocks

FUNCTION_MODULE = Path("modules/function")
PACKAGE_TF = FUNCTION_MODULE / "package.tf"
HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")
# Not valid UTF-8 (file() would refuse it), with NUL and high bytes: a binary asset.
BINARY_ASSET = b"\x89PNG\r\n\x1a\n\x00\xff\xfe" + bytes(range(256)) * 4


def _load_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("terraform_build", TERRAFORM / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    # Registered first: its dataclasses look their module up while being defined.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _load_build()
# The runtimes the lock is resolved for (3.11 at a patch release past 3.11.3: terraform/build.py).
RUNTIMES: tuple[str, ...] = build.PYTHON_VERSIONS


# --- the lock file: checkers ----------------------------------------------------------------


def requirement_blocks(lock_text: str) -> list[str]:
    """Each requirement of a requirements file with its `--hash` options, comments dropped."""
    blocks: list[str] = []
    for raw in lock_text.splitlines():
        line = raw.strip().removesuffix("\\").strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("--") and blocks:
            blocks[-1] += " " + line
        else:
            blocks.append(line)
    return blocks


def pin_problems(lock: Path) -> list[str]:
    """Requirements of the lock file not pinned with `==` or without a sha256 hash."""
    problems = []
    blocks = requirement_blocks(lock.read_text())
    if not blocks:
        return [f"{lock} pins nothing"]
    for block in blocks:
        requirement = block.split()[0]
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*==[^\s;]+", requirement):
            problems.append(f"{requirement}: not pinned with ==")
        if not HASH.search(block):
            problems.append(f"{requirement}: no --hash")
    return problems


def marker_environment(python: str) -> dict[str, str]:
    """The functions' runtime: Cloud Functions' Linux x86_64, CPython `python`."""
    full = python if python.count(".") == 2 else f"{python}.0"
    return {
        "implementation_name": "cpython",
        "implementation_version": full,
        "os_name": "posix",
        "platform_machine": "x86_64",
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": full,
        "python_version": ".".join(full.split(".")[:2]),
        "sys_platform": "linux",
    }


def _applies(marker: Marker | None, python: str, extras: set[str]) -> bool:
    if marker is None:
        return True
    environment = marker_environment(python)
    return any(marker.evaluate({**environment, "extra": extra}) for extra in {"", *extras})


def closure_problems(lock: Path, pyproject: Path) -> list[str]:
    """Where the lock file is not a complete resolution of pyproject.toml's dependencies.

    Walks from pyproject's dependencies through each pinned package's requirements, as the
    package installed in .venv declares them (it must be installed at the pinned version), for
    each runtime: every requirement met by a pin within its specifier, every pin reached.
    """
    pinned = {
        canonicalize_name(name): version for name, version in build.pins(lock.read_text()).items()
    }
    problems: list[str] = []
    reached: set[str] = set()
    for python in RUNTIMES:
        roots = [Requirement(text) for text in build.runtime_dependencies(pyproject)]
        queue = [(requirement, "pyproject.toml") for requirement in roots]
        active_extras: dict[str, set[str]] = {}
        while queue:
            requirement, needed_by = queue.pop()
            name = canonicalize_name(requirement.name)
            version = pinned.get(name)
            if version is None:
                problems.append(f"{name} (needed by {needed_by}, Python {python}) is not pinned")
                continue
            if not requirement.specifier.contains(version, prereleases=True):
                problems.append(
                    f"{name}=={version} is out of range for {needed_by} ({requirement.specifier})"
                )
            extras = active_extras.get(name)
            if extras is not None and set(requirement.extras) <= extras:
                continue
            active_extras[name] = (extras or set()) | set(requirement.extras)
            reached.add(name)
            try:
                installed = importlib.metadata.distribution(name)
            except importlib.metadata.PackageNotFoundError:
                problems.append(f"{name} is not installed in .venv: run `make deps`")
                continue
            if installed.version != version:
                problems.append(
                    f"{name}: .venv has {installed.version}, the lock pins {version}: "
                    "run `make deps`"
                )
                continue
            for text in installed.requires or []:
                dependency = Requirement(text)
                if _applies(dependency.marker, python, active_extras[name]):
                    queue.append((dependency, f"{name}=={version}"))
    problems += [f"{name} is pinned but nothing needs it" for name in sorted(set(pinned) - reached)]
    return sorted(set(problems))


@pytest.fixture
def terraform_copy(tmp_path: Path) -> Path:
    copy = tmp_path / "terraform"
    shutil.copytree(TERRAFORM, copy, ignore=shutil.ignore_patterns(".build", ".terraform"))
    return copy


def _drop_block(lock: Path, name: str) -> None:
    """Remove `name`'s requirement (its line, hashes and via comments) from a lock file."""
    text = lock.read_text()
    pattern = re.compile(rf"^{re.escape(name)}==.*?(?=^[a-z0-9]|\Z)", re.M | re.S)
    assert pattern.search(text), name
    lock.write_text(pattern.sub("", text, count=1))


# --- the lock file: tests -------------------------------------------------------------------


def test_lock_pins_every_requirement_with_hashes() -> None:
    assert pin_problems(build.LOCK) == []


def test_lock_is_resolved_from_pyprojects_current_dependencies() -> None:
    assert build.stale_lock_problem() is None


def test_lock_is_a_complete_resolution_for_every_runtime() -> None:
    assert closure_problems(build.LOCK, build.PYPROJECT) == []
    # Every runtime dependency of pyproject is itself pinned, not only its dependencies.
    roots = {canonicalize_name(Requirement(d).name) for d in build.runtime_dependencies()}
    assert roots <= set(build.pins(build.LOCK.read_text()))


def test_the_venv_installs_at_the_lock_files_versions() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\$\(BIN\)/\.installed: .*\$\(LOCK\)", makefile, re.M)
    assert "terraform/build.py constraints >" in makefile
    assert re.search(r"pip install .*-c \$\(VENV\)/runtime-constraints\.txt", makefile)


def test_a_missing_transitive_pin_is_detected(terraform_copy: Path) -> None:
    lock = terraform_copy / "requirements.txt"
    _drop_block(lock, "six")
    problems = closure_problems(lock, build.PYPROJECT)
    assert any(p.startswith("six (needed by python-dateutil==") for p in problems), problems


def test_a_pin_outside_pyprojects_range_is_detected(terraform_copy: Path) -> None:
    lock = terraform_copy / "requirements.txt"
    lock.write_text(re.sub(r"^orjson==\S+", "orjson==2.0.0", lock.read_text(), flags=re.M))
    problems = closure_problems(lock, build.PYPROJECT)
    assert any(p.startswith("orjson==2.0.0 is out of range for pyproject.toml") for p in problems)


def test_an_unneeded_pin_is_detected(terraform_copy: Path) -> None:
    lock = terraform_copy / "requirements.txt"
    lock.write_text(lock.read_text() + "left-pad==1.0.0 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    assert "left-pad is pinned but nothing needs it" in closure_problems(lock, build.PYPROJECT)


def test_a_requirement_without_hash_or_pin_is_detected(terraform_copy: Path) -> None:
    lock = terraform_copy / "requirements.txt"
    _drop_block(lock, "six")
    lock.write_text(lock.read_text() + "six>=1.5\n")
    assert pin_problems(lock) == ["six>=1.5: not pinned with ==", "six>=1.5: no --hash"]


def test_a_changed_dependency_makes_the_lock_stale(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    text = build.PYPROJECT.read_text()
    pyproject.write_text(text.replace('"orjson>=3.10,<4"', '"orjson>=3.11,<4"', 1))
    assert pyproject.read_text() != text
    problem = build.stale_lock_problem(pyproject, build.LOCK)
    assert problem and "is stale" in problem and "terraform/build.py" in problem


# --- the source zips ------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of what the zips are built from, with the console and the SDKs "built" (a binary
    asset among them)."""
    root = tmp_path / "repo"
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "functions", root / "functions", ignore=ignore)
    shutil.copytree(ROOT / "shared", root / "shared", ignore=ignore)
    (root / "terraform").mkdir()
    shutil.copyfile(build.PYPROJECT, root / "pyproject.toml")
    shutil.copyfile(build.LOCK, root / "terraform" / "requirements.txt")
    # Bytecode beside the sources must not reach a zip.
    (root / "shared" / "__pycache__").mkdir()
    (root / "shared" / "__pycache__" / "config.cpython-311.pyc").write_bytes(b"\x00bytecode")
    files = {
        "console/dist/index.html": b"<!doctype html><title>Streams</title>",
        "console/dist/assets/logo.png": BINARY_ASSET,
        "collect/dist/manifest.json": b"{}",
        "collect/dist/analytics-next/standalone.js": b"/* analytics.js */",
    }
    for path, data in files.items():
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        (root / path).write_bytes(data)
    return root


def _package(repo: Path, *names: str) -> Path:
    output = repo / "terraform" / ".build" / "functions"
    build.package(list(names) or None, root=repo, output=output)
    return output


def test_zip_holds_main_shared_requirements_and_built_files_byte_for_byte(repo: Path) -> None:
    output = _package(repo, "console")
    with zipfile.ZipFile(output / "console.zip") as archive:
        names = archive.namelist()
        assert names == sorted(names)
        shared = sorted(
            p.relative_to(repo).as_posix()
            for p in (repo / "shared").rglob("*")
            if p.suffix in {".py", ".json"} and "__pycache__" not in p.parts
        )
        built = ["console/dist/assets/logo.png", "console/dist/index.html"]
        assert sorted(names) == sorted(["main.py", "requirements.txt", *shared, *built])
        assert archive.read("main.py") == (repo / "functions/console/main.py").read_bytes()
        assert archive.read("requirements.txt") == build.LOCK.read_bytes()
        assert archive.read("console/dist/assets/logo.png") == BINARY_ASSET
        for path in shared:
            assert archive.read(path) == (repo / path).read_bytes(), path
        assert archive.testzip() is None
    manifest = json.loads((output / "console.json").read_text())
    assert (
        manifest["files"]["terraform/requirements.txt"]
        == hashlib.sha256(build.LOCK.read_bytes()).hexdigest()
    )
    assert (
        manifest["files"]["console/dist/assets/logo.png"]
        == hashlib.sha256(BINARY_ASSET).hexdigest()
    )
    assert len(manifest["files"]) == len(names)


def test_each_function_gets_only_its_own_built_files(repo: Path) -> None:
    output = _package(repo, "ingest", "process")
    with zipfile.ZipFile(output / "ingest.zip") as archive:
        assert "collect/dist/analytics-next/standalone.js" in archive.namelist()
        assert not [n for n in archive.namelist() if n.startswith("console/")]
    with zipfile.ZipFile(output / "process.zip") as archive:
        assert not [n for n in archive.namelist() if n.startswith(("console/", "collect/"))]
        assert archive.read("main.py") == (repo / "functions/process/main.py").read_bytes()


def test_the_same_files_give_the_same_zip(repo: Path) -> None:
    output = _package(repo, "console")
    first = (output / "console.zip").read_bytes()
    # Another checkout: other timestamps and modes, same contents.
    for path in (repo / "shared").rglob("*.py"):
        os.utime(path, (1_900_000_000, 1_900_000_000))
        path.chmod(0o600)
    _package(repo, "console")
    assert (output / "console.zip").read_bytes() == first
    with zipfile.ZipFile(output / "console.zip") as archive:
        assert {entry.date_time for entry in archive.infolist()} == {build.ZIP_DATE}


def test_every_function_is_packaged_by_default(repo: Path) -> None:
    output = _package(repo)
    assert sorted(p.stem for p in output.glob("*.zip")) == build.function_names(ROOT)
    assert sorted(p.stem for p in output.glob("*.json")) == build.function_names(ROOT)


def test_packaging_fails_naming_make_console_when_the_console_is_not_built(repo: Path) -> None:
    shutil.rmtree(repo / "console")
    with pytest.raises(build.BuildError, match=r"console/dist is not built.*`make console`"):
        _package(repo)
    # Nothing is written: no zip of the other functions either.
    assert not (repo / "terraform" / ".build").exists()


def test_packaging_fails_naming_make_collect_when_the_sdks_are_not_built(repo: Path) -> None:
    (repo / "collect" / "dist" / "manifest.json").unlink()
    with pytest.raises(build.BuildError, match=r"collect/dist is not built.*`make collect`"):
        _package(repo, "ingest")


def test_packaging_refuses_a_stale_lock(repo: Path) -> None:
    pyproject = repo / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"orjson>=3.10,<4"', '"orjson>=3.11,<4"'))
    with pytest.raises(build.BuildError, match="is stale"):
        _package(repo, "process")


def test_the_command_line_exits_1_with_the_message() -> None:
    result = subprocess.run(
        [
            str(ROOT / ".venv" / "bin" / "python"),
            str(TERRAFORM / "build.py"),
            *("package", "--function", "no_such_function"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "error: functions/no_such_function/main.py does not exist" in result.stderr


# --- which functions serve built files ------------------------------------------------------


def built_files_problems(terraform: Path = TERRAFORM) -> list[str]:
    """Where build.py's BUILT_FILES disagrees with the code, the Makefile or main.tf's assets."""
    problems = []
    served_by_code = {
        module.FUNCTION: module.DIST.relative_to(ROOT).as_posix() for module in (console, collect)
    }
    declared = {name: built.directory for name, built in build.BUILT_FILES.items()}
    if declared != served_by_code:
        problems.append(f"build.BUILT_FILES {declared} != what the code serves {served_by_code}")
    makefile = (ROOT / "Makefile").read_text()
    for name, built in build.BUILT_FILES.items():
        target = built.make_target.removeprefix("make ")
        if not re.search(rf"^{re.escape(target)}: {re.escape(built.marker)}\b", makefile, re.M):
            problems.append(f"{name}: `{built.make_target}` does not build {built.marker}")
    for name, function in deployed_functions(terraform).items():
        expected = [f"{build.BUILT_FILES[name].directory}/**"] if name in build.BUILT_FILES else []
        if function.get("assets", []) != expected:
            problems.append(f"{name}: main.tf assets {function.get('assets')} != {expected}")
    return problems


def test_built_files_agree_with_the_code_the_makefile_and_main_tf() -> None:
    assert built_files_problems() == []


def test_a_function_deployed_without_its_built_files_is_detected(terraform_copy: Path) -> None:
    main = terraform_copy / "main.tf"
    text = main.read_text()
    assert text.count('assets = ["console/dist/**"]') == 1
    main.write_text(text.replace('assets = ["console/dist/**"]', "assets = []"))
    _parse.cache_clear()
    assert built_files_problems(terraform_copy) == [
        "console: main.tf assets [] != ['console/dist/**']"
    ]


# --- Terraform: the module uploads what make package built ----------------------------------


def package_wiring_problems(terraform: Path = TERRAFORM) -> list[str]:
    """Where modules/function does not upload the prebuilt zip, named by its manifest's hash."""
    problems = []
    blocks = module_blocks(terraform / FUNCTION_MODULE)
    locals_ = blocks["locals"]
    package_dir = build.PACKAGES.relative_to(ROOT).as_posix()
    if locals_.get("package_dir") != "${var.source_root}/" + package_dir:
        problems.append(f"package_dir is not source_root/{package_dir}")
    if locals_.get("source_zip") != "${local.package_dir}/${var.name}.zip":
        problems.append("source_zip is not <package_dir>/<name>.zip")
    if locals_.get("manifest_file") != "${local.package_dir}/${var.name}.json":
        problems.append("manifest_file is not <package_dir>/<name>.json")
    if "filesha256(local.manifest_file)" not in locals_.get("source_hash", ""):
        problems.append("source_hash is not the manifest's hash")
    resources = blocks["resource"]
    uploaded = resources.get("google_storage_bucket_object.source", {})
    if "${local.source_hash}" not in uploaded.get("name", ""):
        problems.append("the object is not named by source_hash")
    if uploaded.get("source") != "${local.source_zip}":
        problems.append("the object does not upload source_zip")
    if "${terraform_data.source_package}" not in uploaded.get("depends_on", []):
        problems.append("the object does not wait for the package checks")
    function = resources.get("google_cloudfunctions2_function.this", {})
    storage = function["build_config"][0]["source"][0]["storage_source"][0]
    if storage["object"] != "${google_storage_bucket_object.source.name}":
        problems.append("the function is not built from the uploaded object")
    for path in sorted(terraform.rglob("*.tf")):
        if 'data "archive_file"' in path.read_text():
            problems.append(f"{path.relative_to(terraform)} packages with archive_file")
    return problems


def test_the_function_module_uploads_the_prebuilt_zip() -> None:
    assert package_wiring_problems() == []


def test_a_module_that_packages_by_itself_again_is_detected(terraform_copy: Path) -> None:
    main = terraform_copy / FUNCTION_MODULE / "main.tf"
    text = main.read_text()
    assert text.count("source       = local.source_zip") == 1
    text = text.replace(
        "source       = local.source_zip", "source       = data.archive_file.source.output_path"
    )
    main.write_text(text + '\ndata "archive_file" "source" {\n  type = "zip"\n}\n')
    _parse.cache_clear()
    assert package_wiring_problems(terraform_copy) == [
        "the object does not upload source_zip",
        "modules/function/main.tf packages with archive_file",
    ]


# --- Terraform: package.tf planned by Terraform itself --------------------------------------


TERRAFORM_BINARY = shutil.which("terraform") or "/usr/local/bin/terraform"
needs_terraform = pytest.mark.skipif(
    not Path(TERRAFORM_BINARY).exists(), reason="terraform is not installed"
)


class PackageChecks:
    """modules/function/package.tf alone in a scratch module: it uses no provider, so Terraform
    plans it offline (terraform_data is built in)."""

    def __init__(self, directory: Path, package_tf: Path) -> None:
        self.directory = directory
        directory.mkdir()
        text = package_tf.read_text()
        shutil.copyfile(package_tf, directory / "package.tf")
        variables = sorted(set(re.findall(r"\bvar\.([a-z_]+)", text)))
        (directory / "variables.tf").write_text(
            "".join(f'variable "{name}" {{}}\n' for name in variables)
        )
        self.env = {
            **os.environ,
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_DATA_DIR": str(directory / ".terraform"),
        }
        self._run("init", "-backend=false", "-input=false")

    def _run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [TERRAFORM_BINARY, *args, "-no-color"],
            cwd=self.directory,
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def set(self, **variables: Any) -> None:
        (self.directory / "terraform.tfvars.json").write_text(json.dumps(variables))

    def plan(self) -> subprocess.CompletedProcess[str]:
        return self._run("plan", "-input=false", "-lock=false", "-refresh=false")

    def value(self, expression: str) -> Any:
        result = self._run("console", stdin=expression + "\n")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout.strip())

    @staticmethod
    def message(result: subprocess.CompletedProcess[str]) -> str:
        """The plan's error output with Terraform's line wrapping and box drawing undone."""
        lines = [line.strip("│ ").strip() for line in result.stderr.splitlines()]
        return " ".join(line for line in lines if line)


@pytest.fixture
def checks(tmp_path: Path, repo: Path) -> PackageChecks:
    scratch = PackageChecks(tmp_path / "plan", TERRAFORM / PACKAGE_TF)
    scratch.set(
        source_root=str(repo),
        name="console",
        asset_patterns=["console/dist/**"],
        requirements=build.LOCK.read_text(),
    )
    return scratch


@needs_terraform
def test_plan_accepts_a_current_zip_and_names_it_by_its_manifest(
    checks: PackageChecks, repo: Path
) -> None:
    output = _package(repo, "console")
    result = checks.plan()
    assert result.returncode == 0, result.stderr
    manifest_hash = hashlib.sha256((output / "console.json").read_bytes()).hexdigest()
    assert checks.value("local.source_hash") == manifest_hash[:16]


@needs_terraform
def test_a_code_change_gives_a_new_object_name_and_no_change_the_same(
    checks: PackageChecks, repo: Path
) -> None:
    _package(repo, "console")
    first = checks.value("local.source_hash")
    _package(repo, "console")
    assert checks.value("local.source_hash") == first
    (repo / "shared" / "__init__.py").write_text('"""Changed."""\n')
    _package(repo, "console")
    assert checks.value("local.source_hash") != first
    assert checks.plan().returncode == 0


@needs_terraform
def test_plan_fails_when_the_zip_was_not_built(checks: PackageChecks) -> None:
    result = checks.plan()
    assert result.returncode != 0
    assert "console.zip or its manifest is missing: run `make package`" in checks.message(result)


@needs_terraform
def test_plan_fails_when_a_file_changed_since_packaging(checks: PackageChecks, repo: Path) -> None:
    _package(repo, "console")
    (repo / "shared" / "config.py").write_text("# edited after make package\n")
    result = checks.plan()
    assert result.returncode != 0
    assert (
        "The console zip is stale, these files changed since it was built: shared/config.py. "
        "Run `make package`."
    ) in checks.message(result)


@needs_terraform
def test_plan_fails_naming_make_console_when_the_console_is_not_built(
    checks: PackageChecks, repo: Path
) -> None:
    _package(repo, "console")
    shutil.rmtree(repo / "console" / "dist")
    result = checks.plan()
    assert result.returncode != 0
    message = checks.message(result)
    assert "console/dist/** matches no file" in message
    assert "Run `make console` (console/dist)" in message


@needs_terraform
def test_plan_fails_when_the_zip_lacks_a_built_file(checks: PackageChecks, repo: Path) -> None:
    _package(repo, "console")
    (repo / "console" / "dist" / "assets" / "added-after.js").write_text("/* new */")
    result = checks.plan()
    assert result.returncode != 0
    assert "lacks built files it serves (console/dist/assets/added-after.js)" in checks.message(
        result
    )


@needs_terraform
def test_plan_fails_when_the_zip_carries_other_requirements(
    checks: PackageChecks, repo: Path
) -> None:
    _package(repo, "console")
    checks.set(
        source_root=str(repo),
        name="console",
        asset_patterns=["console/dist/**"],
        requirements="flask==3.1.3\n",
    )
    result = checks.plan()
    assert result.returncode != 0
    assert "carries another requirements.txt" in checks.message(result)
