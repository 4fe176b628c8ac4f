"""Build the Blender add-on as an installable Blender extension zip (``choreo addon build``).

The zip follows Blender's extension layout (Blender 4.2 LTS and newer)::

    blender_manifest.toml       the add-on's manifest (id, version, permissions, wheels)
    __init__.py, ...            everything under blender_addon/ (no caches, no tests)
    protocol/*.py               the repository's protocol/ package, copied as it is
    wheels/*.whl                exactly the wheels the manifest lists

Blender installs an extension by unpacking the zip into an extension repository and
extracting the wheels that fit its platform and Python into one site-packages that all
extensions share, so ``import zmq`` works inside Blender without touching its Python.

Our pure-Python ``protocol`` package is not a wheel: in that shared site-packages its
top-level name would clash with any other extension's ``protocol``. It goes inside the
add-on's own package instead (``bl_ext.<repository>.choreo.protocol``); the add-on
imports it relatively (``from .protocol.client import ...``: the build refuses an
add-on module that imports a top-level ``protocol``), and its own modules import each
other relatively, so the same files serve as the repository's top-level package.

The only wheels are pyzmq's, one pinned version (the manifest names every file):
downloaded once with ``pip download --only-binary=:all: --no-deps --platform ...
--python-version ...`` into a cache folder (``build/wheels-cache``), so later builds
are offline and fast. The manifest is the single source of truth: this module derives
what to download from the wheel file names it lists and checks that the zip holds
exactly those wheels. Nothing of the backend (torch, models) goes in.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

REPO_ROOT = Path(__file__).resolve().parents[1]
ADDON_DIR = REPO_ROOT / "blender_addon"
PROTOCOL_DIR = REPO_ROOT / "protocol"
MANIFEST_NAME = "blender_manifest.toml"
DEFAULT_OUT = REPO_ROOT / "dist"
DEFAULT_CACHE = REPO_ROOT / "build" / "wheels-cache"

PROTOCOL_PACKAGE = "protocol"
"""Where the protocol package sits inside the add-on (``<add-on package>.protocol``)."""

WHEELS_DIR = "wheels"

# Always left out, whatever the manifest's [build] section says.
_ALWAYS_EXCLUDED = ("__pycache__/", "*.pyc", "*.pyo", "/wheels/")
# Never in the zip: the add-on must not carry the backend or its heavy dependencies.
_FORBIDDEN_TOP_LEVEL = {"torch", "backend"}

# An add-on module importing the top-level ``protocol`` would get another extension's.
_TOP_LEVEL_PROTOCOL_IMPORT = re.compile(rb"^[ \t]*(?:from|import)[ \t]+protocol\b", re.MULTILINE)

_WHEEL_NAME = re.compile(
    r"^(?P<distribution>[A-Za-z0-9_.]+)-(?P<version>[^-]+)(?:-(?P<build>\d[^-]*))?"
    r"-(?P<python>[^-]+)-(?P<abi>[^-]+)-(?P<platform>[^-]+)\.whl$")


class AddonBuildError(RuntimeError):
    """The add-on zip cannot be built (bad manifest, missing wheel, download failure)."""


@dataclass(frozen=True)
class WheelName:
    """The parts of a wheel file name (PEP 427)."""

    filename: str
    distribution: str
    version: str
    python_tag: str
    abi_tag: str
    platform_tag: str

    @classmethod
    def parse(cls, filename: str) -> WheelName:
        m = _WHEEL_NAME.match(filename)
        if m is None:
            raise AddonBuildError(f"not a wheel file name: {filename!r}")
        return cls(filename, m["distribution"], m["version"], m["python"], m["abi"], m["platform"])

    @property
    def is_pure(self) -> bool:
        return self.abi_tag == "none" and self.platform_tag == "any"


@dataclass(frozen=True)
class AddonBuild:
    """What ``build_addon`` wrote."""

    zip_path: Path
    size: int
    extension_id: str
    version: str
    wheels: tuple[str, ...]
    """File names under ``wheels/`` in the zip (the manifest's list, in its order)."""
    addon_files: tuple[str, ...]
    """The add-on's own files in the zip (sources, manifest, data), as zip paths."""
    protocol_files: tuple[str, ...]
    """The protocol package's files, as zip paths (``protocol/...``)."""
    downloaded: tuple[str, ...]
    """Wheels fetched from the package index by this build (empty when the cache had all)."""


# ---------------------------------------------------------------- manifest


def read_manifest(addon_dir: Path = ADDON_DIR) -> dict:
    path = Path(addon_dir) / MANIFEST_NAME
    if not path.is_file():
        raise AddonBuildError(f"no {MANIFEST_NAME} in {addon_dir}")
    try:
        with open(path, "rb") as fh:
            manifest = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise AddonBuildError(f"{path}: {err}") from None
    for key in ("schema_version", "id", "version", "name", "type", "blender_version_min"):
        if not isinstance(manifest.get(key), str) or not manifest[key]:
            raise AddonBuildError(f"{path}: missing {key!r}")
    return manifest


def manifest_wheels(manifest: dict) -> list[WheelName]:
    """The manifest's ``wheels``, checked: each is ``./wheels/<valid wheel file name>``, no duplicates."""
    wheels = []
    for entry in manifest.get("wheels", []):
        path = PurePosixPath(entry)
        if "\\" in entry or path.parent != PurePosixPath(WHEELS_DIR):
            raise AddonBuildError(f"manifest wheel {entry!r} is not of the form ./{WHEELS_DIR}/NAME.whl")
        wheels.append(WheelName.parse(path.name))
    names = [w.filename for w in wheels]
    if len(set(names)) != len(names):
        raise AddonBuildError("the manifest lists a wheel twice")
    return wheels


def _check_manifest_wheels(wheels: list[WheelName]) -> None:
    for w in wheels:
        if w.is_pure:
            raise AddonBuildError(f"{w.filename}: the add-on's wheels are binary ones, downloaded; the "
                                  f"protocol package ships inside the add-on ({PROTOCOL_PACKAGE}/), since a "
                                  f"wheel's top-level package would share Blender's extension site-packages")
    for dist in {w.distribution for w in wheels}:
        versions = {w.version for w in wheels if w.distribution == dist}
        if len(versions) > 1:
            raise AddonBuildError(f"the manifest pins {dist} at several versions: {sorted(versions)}")
    for w in wheels:
        if w.distribution.lower() in _FORBIDDEN_TOP_LEVEL:
            raise AddonBuildError(f"{w.filename} must not go into the add-on")


# ---------------------------------------------------------------- wheels


def _pip_download_args(wheel: WheelName, dest: Path) -> list[str]:
    """``pip download`` arguments that fetch exactly ``wheel`` for its platform and Python."""
    python = wheel.python_tag.split(".")[0]
    m = re.fullmatch(r"cp(\d)(\d+)", python)
    if m is None:
        raise AddonBuildError(f"{wheel.filename}: cannot download a {python!r} wheel (expected cpXY)")
    args = [sys.executable, "-m", "pip", "download", f"{wheel.distribution}=={wheel.version}",
            "--only-binary=:all:", "--no-deps", "--implementation", "cp",
            "--python-version", f"{m[1]}.{m[2]}", "--abi", wheel.abi_tag.split(".")[0],
            "--dest", str(dest), "--disable-pip-version-check", "--no-input", "--quiet"]
    for platform in wheel.platform_tag.split("."):
        args += ["--platform", platform]
    return args


def fetch_wheel(wheel: WheelName, cache_dir: Path, *, offline: bool = False) -> tuple[Path, bool]:
    """The cached file for a binary ``wheel``, downloading it first if needed; (path, downloaded)."""
    cached = Path(cache_dir) / wheel.filename
    if cached.is_file():
        return cached, False
    if offline:
        raise AddonBuildError(f"{wheel.filename} is not in the wheel cache {cache_dir} and --offline was "
                              f"given: run the build once with access to the package index")
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache_dir, prefix=".download-") as tmp:
        proc = subprocess.run(_pip_download_args(wheel, Path(tmp)), capture_output=True, text=True)
        got = sorted(p.name for p in Path(tmp).glob("*.whl"))
        if wheel.filename not in got:
            detail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
            raise AddonBuildError(f"pip download did not produce {wheel.filename} (got {got or 'nothing'}, "
                                  f"exit {proc.returncode}): " + " | ".join(detail))
        # Move into place last, so an interrupted download never leaves a partial cached wheel.
        os.replace(Path(tmp) / wheel.filename, cached)
    return cached, True


def _zip_write(zf: zipfile.ZipFile, arcname: str, data: bytes, mtime: float | None = None) -> None:
    stamp = time.localtime(mtime if mtime is not None else time.time())[:6]
    info = zipfile.ZipInfo(arcname, date_time=max(stamp, (1980, 1, 1, 0, 0, 0)))
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _package_files(package_dir: Path) -> list[Path]:
    """The Python package's files (sources and data), without caches."""
    files = []
    for path in sorted(Path(package_dir).rglob("*")):
        rel = path.relative_to(package_dir)
        if path.is_dir() or "__pycache__" in rel.parts or path.suffix in {".pyc", ".pyo"}:
            continue
        if any(part.startswith(".") for part in rel.parts):
            continue
        files.append(path)
    return files


def protocol_files(package_dir: Path = PROTOCOL_DIR) -> list[tuple[Path, str]]:
    """(file, zip path) for the protocol package, placed at ``protocol/`` in the add-on."""
    package_dir = Path(package_dir)
    if not (package_dir / "__init__.py").is_file():
        raise AddonBuildError(f"{package_dir} is not a Python package")
    return [(p, f"{PROTOCOL_PACKAGE}/{p.relative_to(package_dir).as_posix()}") for p in _package_files(package_dir)]


# ---------------------------------------------------------------- add-on files


def _excluded(rel: PurePosixPath, is_dir: bool, patterns: list[str]) -> bool:
    """A small subset of Blender's ``paths_exclude_pattern`` (gitignore-like) rules.

    ``name/`` matches directories only; a leading ``/`` anchors at the add-on root;
    otherwise the pattern is matched (fnmatch) against the file or directory name.
    """
    for pattern in patterns:
        dir_only = pattern.endswith("/")
        anchored = pattern.startswith("/")
        body = pattern.strip("/")
        if dir_only and not is_dir:
            continue
        if anchored:
            parts = PurePosixPath(body).parts
            if len(parts) == len(rel.parts) and all(map(fnmatch.fnmatchcase, rel.parts, parts)):
                return True
        elif fnmatch.fnmatchcase(rel.name, body):
            return True
    return False


def addon_files(addon_dir: Path, patterns: list[str]) -> list[tuple[Path, str]]:
    """(file, zip path) for everything under the add-on folder that the patterns keep."""
    addon_dir = Path(addon_dir)
    patterns = [*_ALWAYS_EXCLUDED, *patterns]
    result: list[tuple[Path, str]] = []
    for root, dirs, files in os.walk(addon_dir):
        root_rel = PurePosixPath(Path(root).relative_to(addon_dir).as_posix())
        dirs[:] = sorted(d for d in dirs if not _excluded(root_rel / d, True, patterns))
        for name in sorted(files):
            rel = root_rel / name
            if not _excluded(rel, False, patterns):
                result.append((Path(root) / name, rel.as_posix().removeprefix("./")))
    return result


# ---------------------------------------------------------------- build


def _check_addon_files(files: list[tuple[Path, str]]) -> None:
    """The add-on's own files: a manifest and an ``__init__.py``, nothing of the backend, no
    ``protocol/`` of its own (the build puts the repository's there), and no module that
    imports the top-level ``protocol`` (in Blender, possibly another extension's)."""
    names = {arc for _, arc in files}
    for required in (MANIFEST_NAME, "__init__.py"):
        if required not in names:
            raise AddonBuildError(f"the add-on has no {required}")
    for path, arc in files:
        top = arc.split("/")[0]
        if top in _FORBIDDEN_TOP_LEVEL or arc.startswith(f"{WHEELS_DIR}/"):
            raise AddonBuildError(f"{arc} must not go into the add-on zip")
        if top == PROTOCOL_PACKAGE:
            raise AddonBuildError(f"{arc}: the add-on has a {PROTOCOL_PACKAGE}/ of its own; the build puts "
                                  f"the repository's there")
        if arc.endswith(".py") and _TOP_LEVEL_PROTOCOL_IMPORT.search(path.read_bytes()):
            raise AddonBuildError(f"{arc} imports the top-level {PROTOCOL_PACKAGE!r}, which in Blender may be "
                                  f"another extension's: import it relatively (from .{PROTOCOL_PACKAGE} ...)")


def build_addon(out_dir: Path = DEFAULT_OUT, *, cache_dir: Path = DEFAULT_CACHE, offline: bool = False,
                addon_dir: Path = ADDON_DIR, protocol_dir: Path = PROTOCOL_DIR,
                log=None) -> AddonBuild:
    """Build ``<out_dir>/<id>-<version>.zip``, the installable extension; see the module docstring."""
    say = log or (lambda msg: None)
    manifest = read_manifest(addon_dir)
    wheels = manifest_wheels(manifest)
    _check_manifest_wheels(wheels)
    build = manifest.get("build", {})
    patterns = list(build.get("paths_exclude_pattern", []))

    files = addon_files(addon_dir, patterns)
    _check_addon_files(files)
    shipped_protocol = protocol_files(protocol_dir)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    zip_path = out_dir / f"{manifest['id']}-{manifest['version']}.zip"
    downloaded: list[str] = []
    wheel_paths: list[Path] = []
    for wheel in wheels:
        path, fetched = fetch_wheel(wheel, cache_dir, offline=offline)
        if fetched:
            downloaded.append(wheel.filename)
            say(f"downloaded {wheel.filename}")
        wheel_paths.append(path)

    partial = zip_path.with_name(zip_path.name + ".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, arc in files + shipped_protocol:
            _zip_write(zf, arc, path.read_bytes(), path.stat().st_mtime)
        for path in wheel_paths:
            # Wheels are zips already: store them as they are.
            zf.write(path, f"{WHEELS_DIR}/{path.name}", compress_type=zipfile.ZIP_STORED)
    os.replace(partial, zip_path)

    with zipfile.ZipFile(zip_path) as zf:
        in_zip = {n.removeprefix(f"{WHEELS_DIR}/") for n in zf.namelist() if n.startswith(f"{WHEELS_DIR}/")}
    if in_zip != {w.filename for w in wheels}:
        raise AddonBuildError(f"{zip_path}: wheels {sorted(in_zip)} differ from the manifest's "
                              f"{sorted(w.filename for w in wheels)}")
    return AddonBuild(zip_path=zip_path, size=zip_path.stat().st_size, extension_id=manifest["id"],
                      version=manifest["version"], wheels=tuple(w.filename for w in wheels),
                      addon_files=tuple(arc for _, arc in files),
                      protocol_files=tuple(arc for _, arc in shipped_protocol), downloaded=tuple(downloaded))


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    p.add_argument("--offline", action="store_true",
                   help="use only wheels already in the cache; never contact the package index")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE,
                   help=f"downloaded wheels are kept here (default: {DEFAULT_CACHE})")


def run(args: argparse.Namespace) -> int:
    """``choreo addon build``: build the zip, print its path and size."""
    started = time.perf_counter()
    try:
        result = build_addon(args.out, cache_dir=args.cache, offline=args.offline,
                             log=lambda msg: print(msg, file=sys.stderr))
    except AddonBuildError as err:
        print(f"choreo: addon build failed: {err}", file=sys.stderr)
        return 1
    print(f"{result.zip_path.resolve()} ({result.size / 1e6:.1f} MB, {result.size} bytes; "
          f"{len(result.wheels)} wheels, {len(result.addon_files)} add-on files, "
          f"{len(result.protocol_files)} protocol files; "
          f"{time.perf_counter() - started:.1f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m backend.addon_build``: the same build, without importing the rest of the backend."""
    p = argparse.ArgumentParser(prog="python -m backend.addon_build", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
