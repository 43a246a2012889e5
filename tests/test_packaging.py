"""The sdist and the wheel: built from the sources, with the metadata a package index shows."""

import ast
import email.parser
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import sklearn_dropnet

pytest.importorskip("build")
pytest.importorskip("twine")

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "sklearn_dropnet"
# What the sdist is built from: the files pyproject.toml names.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "sklearn_dropnet")


def _normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


@pytest.fixture(scope="module")
def dists(tmp_path_factory):
    """Build the sdist, then the wheel from the sdist (as ``python -m build`` does),
    from a copy of the sources: the build leaves nothing in the working tree."""
    tmp = tmp_path_factory.mktemp("build")
    source = tmp / "source"
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / name, source / name)
    out = tmp / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    return sdist, wheel


def wheel_metadata(wheel):
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode()), archive.namelist()


def sdist_metadata(sdist):
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        (name,) = [n for n in names if n.count("/") == 1 and n.endswith("/PKG-INFO")]
        return email.parser.Parser().parsestr(archive.extractfile(name).read().decode()), names


def requirement_names(metadata):
    """``{distribution name: extras it is in ('' for none)}`` of Requires-Dist."""
    names = {}
    for line in metadata.get_all("Requires-Dist"):
        name = _normalized(re.match(r"[A-Za-z0-9_.\-]+", line).group())
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", line)
        names.setdefault(name, set()).add(extra.group(1) if extra else "")
    return names


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sdist", "wheel"])
def test_metadata(dists, kind):
    sdist, wheel = dists
    metadata, names = sdist_metadata(sdist) if kind == "sdist" else wheel_metadata(wheel)
    assert metadata["Name"] == "sklearn-dropnet"
    assert metadata["Version"] == sklearn_dropnet.__version__
    assert metadata["License-Expression"] == "BSD-3-Clause"
    assert metadata.get_all("License-File") == ["LICENSE"]
    assert metadata["Requires-Python"] == ">=3.10"
    required = requirement_names(metadata)
    for name in ("numpy", "scipy", "torch", "skorch", "scikit-learn", "torch-pruning", "joblib"):
        assert "" in required.get(name, ()), f"{name} is not a dependency"
    for name in ("onnx", "onnxscript", "onnxruntime"):
        assert "export" in required[name]
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().strip() == (ROOT / "README.md").read_text().strip()
    assert any(c.startswith("Development Status") for c in metadata.get_all("Classifier"))
    assert "pruning" in metadata["Keywords"]
    licenses = [name for name in names if name.endswith("LICENSE")]
    assert licenses, f"no LICENSE in the {kind}"


@pytest.mark.slow
def test_license_file_is_in_both(dists):
    sdist, wheel = dists
    text = (ROOT / "LICENSE").read_text()
    assert "BSD 3-Clause License" in text and "Copyright (c) 2026, sklearn-dropnet developers" in text
    with tarfile.open(sdist) as archive:
        (name,) = [n for n in archive.getnames() if n.count("/") == 1 and n.endswith("/LICENSE")]
        assert archive.extractfile(name).read().decode() == text
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(name).decode() == text


@pytest.mark.slow
def test_wheel_holds_every_module_and_the_command(dists):
    _, wheel = dists
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        assert "sklearn-dropnet = sklearn_dropnet.cli:main" in archive.read(entry_points).decode()
    modules = {str(path.relative_to(ROOT)) for path in PACKAGE.rglob("*.py")}
    assert modules <= names, sorted(modules - names)


@pytest.mark.slow
def test_twine_check_passes(dists):
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == 2


def imported_distributions():
    """``{distribution: modules importing it}`` of every third-party import in the package."""
    by_module = importlib.metadata.packages_distributions()
    found = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                tops = [node.module.split(".")[0]]
            else:
                continue
            for top in tops:
                if top in sys.stdlib_module_names or top == "sklearn_dropnet":
                    continue
                for distribution in by_module.get(top, [top]):
                    found.setdefault(_normalized(distribution), set()).add(path.name)
    return found


@pytest.mark.slow
def test_every_imported_distribution_is_declared(dists):
    _, wheel = dists
    declared = requirement_names(wheel_metadata(wheel)[0])
    imported = imported_distributions()
    assert {"scipy", "torch", "skorch", "scikit-learn", "onnxruntime"} <= set(imported)
    missing = {name: sorted(where) for name, where in imported.items() if name not in declared}
    assert not missing, f"imported but not declared (as a dependency or in an extra): {missing}"
