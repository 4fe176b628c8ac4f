"""``choreo addon build``: the Blender extension zip (manifest, add-on files, the protocol package
inside the add-on, wheels), without Blender.

tests/blender/test_extension_install.py installs the same zip into real headless Blender.
The first build downloads the pinned pyzmq wheels into build/wheels-cache (needs the
package index); later builds are offline.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from backend import addon_build
from backend.addon_build import AddonBuildError, WheelName, build_addon

REPO = Path(__file__).resolve().parents[1]
ADDON = REPO / "blender_addon"
MANIFEST = tomllib.loads((ADDON / "blender_manifest.toml").read_text())
MANIFEST_WHEELS = [w.rsplit("/", 1)[-1] for w in MANIFEST["wheels"]]
PROTOCOL_FILES = {f"protocol/{p.name}" for p in (REPO / "protocol").glob("*.py")}
BACKEND_IMPORT = re.compile(rb"^\s*(import|from)\s+(torch|backend)\b", re.MULTILINE)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> addon_build.AddonBuild:
    return build_addon(tmp_path_factory.mktemp("addon"))


@pytest.fixture(scope="module")
def names(built) -> list[str]:
    with zipfile.ZipFile(built.zip_path) as zf:
        return zf.namelist()


def test_manifest_is_a_blender_extension_manifest() -> None:
    for key, value in {"schema_version": "1.0.0", "id": "choreo", "name": "Choreo", "type": "add-on",
                       "blender_version_min": "4.2.0", "license": ["SPDX:MIT"]}.items():
        assert MANIFEST[key] == value, key
    assert set(MANIFEST["permissions"]) == {"network", "files"}
    for text in (MANIFEST["tagline"], *MANIFEST["permissions"].values()):
        assert len(text) <= 64 and text[-1].isalnum(), text  # Blender's rules for terse texts
    assert all(w.startswith("./wheels/") and w.endswith(".whl") for w in MANIFEST["wheels"])
    assert len(set(MANIFEST_WHEELS)) == len(MANIFEST_WHEELS)


def test_manifest_pins_one_pyzmq_with_a_wheel_for_every_platform_and_blender_python() -> None:
    pyzmq = [WheelName.parse(w) for w in MANIFEST_WHEELS if w.startswith("pyzmq-")]
    assert len({w.version for w in pyzmq}) == 1, "pin exactly one pyzmq version"
    # Blender picks wheels by platform and by Python: 3.11 (Blender 4.2-5.0), 3.13 (5.1+).
    # It derives an extension's Python versions from explicit cpXY tags (abi3 is ignored once
    # a cp311 wheel is there), so each Python needs its own cpXY wheel.
    platforms = {
        "linux-x64": lambda p: p.startswith("manylinux") and p.endswith("_x86_64"),
        "windows-x64": lambda p: p == "win_amd64",
        "windows-arm64": lambda p: p == "win_arm64",
        "macos-arm64": lambda p: p.startswith("macosx_") and p.endswith(("_arm64", "_universal2")),
        "macos-x64": lambda p: p.startswith("macosx_") and p.endswith(("_x86_64", "_universal2")),
    }
    assert set(MANIFEST["platforms"]) == set(platforms)
    for python in ("cp311", "cp313"):
        for platform, fits in platforms.items():
            assert any(w.python_tag == python and w.abi_tag == python
                       and any(fits(p) for p in w.platform_tag.split(".")) for w in pyzmq), (python, platform)
    assert all(w.startswith("pyzmq-") for w in MANIFEST_WHEELS)  # the protocol is no wheel


def test_zip_holds_the_addon_manifest_and_exactly_the_manifests_wheels(built, names) -> None:
    assert built.zip_path.name == f"choreo-{MANIFEST['version']}.zip"
    assert built.size == built.zip_path.stat().st_size > 1_000_000
    assert {"blender_manifest.toml", "__init__.py"} <= set(names)
    wheels = [n.removeprefix("wheels/") for n in names if n.startswith("wheels/")]
    assert sorted(wheels) == sorted(MANIFEST_WHEELS) == sorted(built.wheels)
    with zipfile.ZipFile(built.zip_path) as zf:
        assert tomllib.loads(zf.read("blender_manifest.toml").decode()) == MANIFEST
    # Every add-on source and data file is there (presets included), at the zip root.
    expected = {p.relative_to(ADDON).as_posix() for p in ADDON.rglob("*")
                if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
                and "tests" not in p.relative_to(ADDON).parts[:1]
                and not any(part.startswith(".") for part in p.relative_to(ADDON).parts)}
    assert expected == set(built.addon_files)
    # ... and the repository's protocol package, as it is, inside the add-on's own package
    assert set(built.protocol_files) == PROTOCOL_FILES
    assert set(names) == expected | PROTOCOL_FILES | {f"wheels/{w}" for w in wheels}
    with zipfile.ZipFile(built.zip_path) as zf:
        for name in PROTOCOL_FILES:
            assert zf.read(name) == (REPO / name).read_bytes(), name


def test_zip_has_no_backend_torch_or_caches(built, names) -> None:
    for name in names:
        top = name.split("/")[0]
        assert top not in {"backend", "torch", "tests"}, name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
        assert "torch" not in name.lower(), name
    with zipfile.ZipFile(built.zip_path) as zf:
        sources = {n: zf.read(n) for n in names if n.endswith(".py")}
    assert PROTOCOL_FILES <= set(sources)
    offenders = [n for n, text in sources.items() if BACKEND_IMPORT.search(text)]
    assert offenders == [], f"imports torch or the backend: {offenders}"


OTHER_PROTOCOL = "KIND = 'not ours'\n"


def test_the_unpacked_addon_uses_its_own_protocol_beside_another_extensions(built, tmp_path) -> None:
    """Unpacked as Blender unpacks it, the add-on imports the protocol package it carries, even
    with another top-level ``protocol`` first on ``sys.path`` (another extension's wheel in
    the shared site-packages), and leaves that one alone."""
    with zipfile.ZipFile(built.zip_path) as zf:
        zf.extractall(tmp_path / "repo" / "choreo", [n for n in zf.namelist() if not n.startswith("wheels/")])
    (tmp_path / "site" / "protocol").mkdir(parents=True)
    (tmp_path / "site" / "protocol" / "__init__.py").write_text(OTHER_PROTOCOL)
    code = ("import sys, protocol\n"  # the other extension's, found first
            "sys.path.append(sys.argv[1])\n"  # the extension repository, holding choreo/
            "import choreo.core.backend_link as link, choreo.core.edit_plan as plan\n"
            "from choreo.protocol.job_stream import JobStream\n"
            "print(protocol.KIND)\n"
            "print(link.ChoreoClient.__module__, JobStream.__module__, plan.JOINT_NAMES[0])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'protocol'))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "repo")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
    other, ours, loaded = proc.stdout.splitlines()
    assert other == "not ours"
    assert ours == "choreo.protocol.client choreo.protocol.job_stream pelvis"
    assert loaded == "['protocol']"  # the other extension's package, and none of ours under its name


def test_the_build_refuses_an_addon_module_that_imports_the_top_level_protocol(tmp_path) -> None:
    addon = tmp_path / "addon"
    (addon / "core").mkdir(parents=True)
    (addon / "__init__.py").write_text("def register(): pass\ndef unregister(): pass\n")
    (addon / "blender_manifest.toml").write_text((ADDON / "blender_manifest.toml").read_text())
    (addon / "core" / "link.py").write_text("from .. import x\nfrom protocol.client import ChoreoClient\n")
    with pytest.raises(AddonBuildError, match="core/link.py imports the top-level 'protocol'"):
        build_addon(tmp_path / "out", addon_dir=addon, offline=True)
    (addon / "core" / "link.py").write_text("from ..protocol.client import ChoreoClient\n")
    (addon / "protocol").mkdir()
    (addon / "protocol" / "__init__.py").write_text("")
    with pytest.raises(AddonBuildError, match="protocol/ of its own"):
        build_addon(tmp_path / "out", addon_dir=addon, offline=True)


def test_addon_sources_import_the_protocol_only_relatively() -> None:
    top_level = re.compile(r"^\s*(from|import)\s+protocol\b", re.MULTILINE)
    offenders = [p for p in ADDON.rglob("*.py") if top_level.search(p.read_text())]
    assert offenders == []


def test_cli_builds_offline_from_the_cache_and_prints_path_and_size(built, tmp_path) -> None:
    # `built` filled the wheel cache, so this build needs no network.
    proc = subprocess.run([sys.executable, "-m", "backend.cli", "addon", "build", "--out", str(tmp_path),
                           "--offline"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    zip_path = tmp_path / built.zip_path.name
    assert zip_path.is_file()
    assert str(zip_path.resolve()) in proc.stdout
    assert f"{zip_path.stat().st_size} bytes" in proc.stdout
    with zipfile.ZipFile(zip_path) as zf, zipfile.ZipFile(built.zip_path) as first:
        assert sorted(zf.namelist()) == sorted(first.namelist())


def test_offline_build_without_cached_wheels_says_what_to_do(tmp_path) -> None:
    with pytest.raises(AddonBuildError, match="not in the wheel cache"):
        build_addon(tmp_path / "out", cache_dir=tmp_path / "empty-cache", offline=True)
    assert not list((tmp_path / "out").glob("*.zip"))


def test_manifest_and_wheels_must_agree(tmp_path) -> None:
    addon = tmp_path / "addon"
    addon.mkdir()
    (addon / "__init__.py").write_text("def register(): pass\ndef unregister(): pass\n")
    text = (ADDON / "blender_manifest.toml").read_text()
    wheel = "./wheels/choreo_protocol-0.1.0-py3-none-any.whl"  # the protocol as a wheel, as before
    (addon / "blender_manifest.toml").write_text(text.replace('wheels = [\n', f'wheels = [\n  "{wheel}",\n'))
    with pytest.raises(AddonBuildError, match="ships inside the add-on"):
        build_addon(tmp_path / "out", addon_dir=addon, offline=True)
    (addon / "blender_manifest.toml").write_text(text.replace("pyzmq-26.4.0-cp313-cp313-win_amd64",
                                                              "pyzmq-26.3.0-cp313-cp313-win_amd64"))
    with pytest.raises(AddonBuildError, match="several versions"):
        build_addon(tmp_path / "out", addon_dir=addon, offline=True)


def test_exclude_patterns_follow_blenders_rules(tmp_path) -> None:
    addon = tmp_path / "addon"
    for rel in ("__init__.py", "ops.py", "presets/a.json", "core/__pycache__/x.cpython-311.pyc",
                "core/mod.py", "core/old.pyc", ".hidden/y.py", "tests/test_x.py", "deep/tests/keep.py",
                "build.zip", "deep/keep.zip", "scene.blend1", "wheels/stale.whl"):
        (addon / rel).parent.mkdir(parents=True, exist_ok=True)
        (addon / rel).write_text("x")
    patterns = tomllib.loads((ADDON / "blender_manifest.toml").read_text())["build"]["paths_exclude_pattern"]
    kept = sorted(arc for _, arc in addon_build.addon_files(addon, patterns))
    assert kept == ["__init__.py", "core/mod.py", "deep/keep.zip", "deep/tests/keep.py", "ops.py",
                    "presets/a.json"]
