"""``choreo addon build``: the Blender extension zip (manifest, add-on files, wheels), without Blender.

tests/blender/test_extension_install.py installs the same zip into real headless Blender.
The first build downloads the pinned pyzmq wheels into build/wheels-cache (needs the
package index); later builds are offline.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
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
PROTOCOL_WHEEL = f"choreo_protocol-{MANIFEST['version']}-py3-none-any.whl"
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
    assert PROTOCOL_WHEEL in MANIFEST_WHEELS


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
    assert expected == set(names) - {f"wheels/{w}" for w in wheels}


def test_zip_has_no_backend_torch_or_caches(built, names) -> None:
    for name in names:
        top = name.split("/")[0]
        assert top not in {"backend", "torch", "tests"}, name
        assert "__pycache__" not in name and not name.endswith(".pyc"), name
        assert "torch" not in name.lower(), name
    with zipfile.ZipFile(built.zip_path) as zf:
        sources = {n: zf.read(n) for n in names if n.endswith(".py")}
        with zf.open(f"wheels/{PROTOCOL_WHEEL}") as fh, zipfile.ZipFile(io.BytesIO(fh.read())) as wheel:
            sources.update({f"{PROTOCOL_WHEEL}/{n}": wheel.read(n) for n in wheel.namelist() if n.endswith(".py")})
    assert sources
    offenders = [n for n, text in sources.items() if BACKEND_IMPORT.search(text)]
    assert offenders == [], f"imports torch or the backend: {offenders}"


def test_protocol_wheel_is_a_valid_wheel_of_the_protocol_package(built, tmp_path) -> None:
    with zipfile.ZipFile(built.zip_path) as zf:
        wheel_path = tmp_path / PROTOCOL_WHEEL
        wheel_path.write_bytes(zf.read(f"wheels/{PROTOCOL_WHEEL}"))
    dist_info = f"choreo_protocol-{MANIFEST['version']}.dist-info"
    with zipfile.ZipFile(wheel_path) as wheel:
        files = set(wheel.namelist())
        assert {f"{dist_info}/{n}" for n in ("METADATA", "WHEEL", "RECORD")} <= files
        assert {f"protocol/{p.name}" for p in (REPO / "protocol").glob("*.py")} <= {
            n for n in files if n.count("/") == 1 and n.startswith("protocol/")}
        assert {n.split("/")[0] for n in files} == {"protocol", dist_info}
        assert "Root-Is-Purelib: true" in wheel.read(f"{dist_info}/WHEEL").decode()
        rows = list(csv.reader(io.StringIO(wheel.read(f"{dist_info}/RECORD").decode())))
        assert {r[0] for r in rows} == files
        for name, digest, size in rows:
            if name.endswith("/RECORD"):
                assert digest == size == ""
                continue
            data = wheel.read(name)
            expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert (digest, int(size)) == (f"sha256={expected}", len(data)), name

    # Installed by pip into an empty folder, it is what `import protocol` finds.
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--quiet",
                           "--disable-pip-version-check", "--target", str(target), str(wheel_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    code = ("import protocol, protocol.messages as m, protocol.client; print(protocol.__file__); "
            "print(m.PROTOCOL_NAME, m.PROTOCOL_VERSION)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    location, version_line = proc.stdout.split("\n")[:2]
    assert Path(location) == target / "protocol" / "__init__.py"
    from protocol.messages import PROTOCOL_NAME, PROTOCOL_VERSION
    assert version_line == f"{PROTOCOL_NAME} {PROTOCOL_VERSION}"


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
    (addon / "blender_manifest.toml").write_text(text.replace(f'  "./wheels/{PROTOCOL_WHEEL}",\n', ""))
    with pytest.raises(AddonBuildError, match="choreo_protocol"):
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
