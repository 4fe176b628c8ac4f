"""The add-on as a Blender extension: build its zip, install it the way Blender does, dance with it.

1. ``choreo addon build --out TMP`` runs with the backend's Python (``$CHOREO_BACKEND_PYTHON``),
   as a developer or CI would run it; the zip is checked with Blender's own extension validator.
2. A separate headless bpy process, with a throw-away user folder (``BLENDER_USER_RESOURCES``)
   and without the repository on ``sys.path``, installs the zip with
   ``bpy.ops.extensions.package_install_files(repo="user_default", enable_on_install=True)``:
   Blender unpacks it into the extension repository, extracts the wheels that fit this
   platform and Python into its extension site-packages, and enables ``bl_ext.user_default.choreo``.
   ``zmq`` must then come from those wheels: this bpy environment has its own pyzmq (the
   tests need it), so the probe refuses to import it from anywhere else. The protocol
   package comes from inside the extension (``bl_ext.user_default.choreo.protocol``): the
   probe first puts another top-level ``protocol`` on ``sys.path``, as another extension's
   wheel in the shared site-packages would, and the add-on must neither need nor touch it.
3. The installed add-on connects to the session's real backend and runs the generate operator.

The probe runs once per module and reports each stage in a JSON file, so a failing stage
does not hide the others.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import bpy
import pytest

from tests.blender.conftest import EXAMPLE_SONG, FAST_OPTIONS, REPO_ROOT, backend_env, backend_python

EXTENSION_MODULE = "bl_ext.user_default.choreo"
MANIFEST = tomllib.loads((REPO_ROOT / "blender_addon" / "blender_manifest.toml").read_text())
PYZMQ_VERSION = {w.rsplit("/", 1)[-1].split("-")[1] for w in MANIFEST["wheels"]
                 if w.rsplit("/", 1)[-1].startswith("pyzmq-")}
SECONDS = 3.0

# Runs in the separate bpy process: argv[1] is a JSON object of parameters; writes its report
# to params["report"]. Every stage is caught and recorded, so the report is always written.
PROBE = r'''
import importlib.machinery, json, os, sys, traceback

params = json.loads(sys.argv[1])
report = {}

def save():
    with open(params["report"], "w") as fh:
        json.dump(report, fh, indent=1)

def stage(name, fn):
    try:
        report[name] = fn()
    except BaseException:
        report[name + "_error"] = traceback.format_exc()
    save()

# Only the extension's site-packages may provide this (this bpy venv has its own pyzmq).
EXT_ROOT = os.path.realpath(os.path.join(params["user_resources"], "extensions")) + os.sep
ONLY_FROM_EXTENSION = {"zmq"}

# Another extension's top-level `protocol`, ahead of everything on the path.
os.makedirs(os.path.join(params["other_site"], "protocol"), exist_ok=True)
with open(os.path.join(params["other_site"], "protocol", "__init__.py"), "w") as fh:
    fh.write("KIND = 'not ours'\n")
sys.path.insert(0, params["other_site"])

class ExtensionOnly:
    @staticmethod
    def find_spec(name, path=None, target=None):
        if path is not None or name not in ONLY_FROM_EXTENSION:
            return None
        dirs = [p for p in sys.path if os.path.realpath(p or ".").startswith(EXT_ROOT)]
        spec = importlib.machinery.PathFinder.find_spec(name, dirs)
        if spec is None:
            raise ModuleNotFoundError(f"no module {name!r} in the extension site-packages {dirs}", name=name)
        return spec

sys.meta_path.insert(0, ExtensionOnly)

import bpy
report["blender"] = bpy.app.version_string
report["python"] = list(sys.version_info[:3])

def install():
    result = bpy.ops.extensions.package_install_files(
        filepath=params["zip"], repo="user_default", enable_on_install=True)
    return sorted(result)

def installed():
    repo = next(r for r in bpy.context.preferences.extensions.repos if r.module == "user_default")
    folder = os.path.join(repo.directory, "choreo")
    module = sys.modules.get(params["module"])
    return {
        "repo_directory": repo.directory,
        "files": sorted(os.path.relpath(os.path.join(d, f), folder)
                        for d, _, fs in os.walk(folder) for f in fs if "__pycache__" not in d),
        "enabled": [a.module for a in bpy.context.preferences.addons],
        "module_file": getattr(module, "__file__", None),
        "site_packages": sorted(p for p in sys.path if os.path.realpath(p or ".").startswith(EXT_ROOT)),
        # the bpy environment itself may live in the repository (.venv-bpy-*): that is not a leak
        "repo_on_path": [p for p in sys.path
                         if os.path.realpath(p or ".").startswith(os.path.realpath(params["repo_root"]))
                         and not os.path.realpath(p).startswith(os.path.realpath(sys.prefix))],
    }

def imports():
    import importlib
    import zmq
    import protocol as other
    import numpy as np
    ours = importlib.import_module(params["module"] + ".protocol")
    messages = importlib.import_module(params["module"] + ".protocol.messages")
    session = importlib.import_module(params["module"] + ".session")
    sent = messages.Message("hello", {"n": 1}, buffers={"x": np.arange(4, dtype=np.float32)})
    frames = [bytes(f) for f in messages.encode(sent)]
    back = messages.decode(frames)
    assert back.type == "hello" and back.buffers["x"].tolist() == [0.0, 1.0, 2.0, 3.0], back
    header = frames[0]
    return {"zmq_file": zmq.__file__, "zmq_version": zmq.__version__, "libzmq": zmq.zmq_version(),
            "protocol_file": ours.__file__, "client": session.ChoreoClient.__module__,
            "other_protocol": [other.KIND, other.__file__,
                               sorted(m for m in sys.modules if m.split(".")[0] == "protocol")],
            "encoded_header_bytes": len(header)}

def fcurves_of(obj):
    animation = obj.animation_data
    action = animation.action
    slot = getattr(animation, "action_slot", None)
    if slot is not None and len(getattr(action, "layers", ())):  # layered actions (4.4+, only kind in 5.0)
        from bpy_extras import anim_utils
        channelbag = anim_utils.action_get_channelbag_for_slot(action, slot)
        return list(channelbag.fcurves) if channelbag is not None else []
    return list(action.fcurves)

def generate():
    prefs = bpy.context.preferences.addons[params["module"]].preferences
    prefs.backend_mode = "CONNECT"
    prefs.connection_file = params["connection_file"]
    scene = bpy.context.scene
    scene.choreo.audio_path = params["song"]
    if hasattr(scene.choreo, "range_mode"):  # "seconds" counts only in a time range
        scene.choreo.range_mode = "RANGE"
    scene.choreo.seconds = params["seconds"]
    scene.choreo.seed = 0
    result = sorted(bpy.ops.choreo.generate(options=json.dumps(params["options"])))
    obj = bpy.data.objects.get("SMPL")
    out = {"result": result, "objects": sorted(o.name for o in bpy.data.objects)}
    if obj is not None:
        out["type"] = obj.type
        out["bones"] = len(obj.pose.bones) if obj.pose else 0
        action = obj.animation_data.action if obj.animation_data else None
        out["action"] = action.name if action else None
        if action is not None:
            curves = fcurves_of(obj)
            out["fcurves"] = len(curves)
            out["data_paths"] = sorted({c.data_path for c in curves})[:8]
            out["keys_max"] = max((len(c.keyframe_points) for c in curves), default=0)
            out["frame_range"] = list(action.frame_range)
            out["fps"] = scene.render.fps / scene.render.fps_base
    return out

stage("install", install)
stage("installed", installed)
stage("imports", imports)
if params.get("connection_file"):
    stage("generate", generate)
save()
'''


def _blender_ext_cli() -> Path:
    """Blender's own extension command line (``blender --command extension ...``), run as a script."""
    return Path(bpy.utils.system_resource("SCRIPTS")) / "addons_core" / "bl_pkg" / "cli" / "blender_ext.py"


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``choreo addon build --out TMP`` with the backend's Python (wheels cached under build/)."""
    out = tmp_path_factory.mktemp("addon-zip")
    proc = subprocess.run([backend_python(), "-m", "backend.cli", "addon", "build", "--out", str(out)],
                          cwd=REPO_ROOT, env=backend_env(), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"choreo addon build failed:\n{proc.stdout}\n{proc.stderr[-4000:]}"
    zips = sorted(out.glob("*.zip"))
    assert [z.name for z in zips] == [f"{MANIFEST['id']}-{MANIFEST['version']}.zip"], zips
    assert str(zips[0].resolve()) in proc.stdout and "MB" in proc.stdout, proc.stdout
    return zips[0]


@pytest.fixture(scope="module")
def probe(extension_zip: Path, backend, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Install and use the zip in a fresh bpy process; its stage-by-stage report."""
    work = tmp_path_factory.mktemp("extension-install")
    user = work / "blender-user"
    home = work / "home"
    user.mkdir()
    home.mkdir()
    script = work / "probe.py"
    script.write_text(PROBE)
    report_path = work / "report.json"
    params = {"zip": str(extension_zip), "report": str(report_path), "user_resources": str(user),
              "other_site": str(work / "other-extension-site"),
              "module": EXTENSION_MODULE, "repo_root": str(REPO_ROOT),
              "connection_file": str(backend.connection_file), "song": str(EXAMPLE_SONG),
              "seconds": SECONDS, "options": FAST_OPTIONS}
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTHON", "BLENDER_")) and k != "CHOREO_BACKEND_PYTHON"}
    env.update(BLENDER_USER_RESOURCES=str(user), HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"),
               XDG_CACHE_HOME=str(home / ".cache"))
    # -I: no PYTHONPATH, no user site, not even the script's folder on sys.path.
    proc = subprocess.run([sys.executable, "-I", str(script), json.dumps(params)], cwd=work, env=env,
                          capture_output=True, text=True, timeout=900)
    log = f"--- probe stdout\n{proc.stdout[-6000:]}\n--- probe stderr\n{proc.stderr[-6000:]}"
    assert report_path.exists(), f"the bpy probe wrote no report (exit {proc.returncode})\n{log}"
    report = json.loads(report_path.read_text())
    report["log"] = log
    report["user_resources"] = str(user)
    return report


def _stage(report: dict, name: str):
    if name not in report:
        pytest.fail(f"stage {name!r} failed:\n{report.get(name + '_error', '(not run)')}\n{report['log']}")
    return report[name]


def test_zip_passes_blenders_extension_validator(extension_zip: Path) -> None:
    cli = _blender_ext_cli()
    assert cli.is_file(), cli
    proc = subprocess.run([sys.executable, str(cli), "validate", str(extension_zip)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_installs_and_enables_as_an_extension(probe: dict) -> None:
    assert _stage(probe, "install") == ["FINISHED"]
    installed = _stage(probe, "installed")
    assert Path(installed["repo_directory"]).resolve().is_relative_to(Path(probe["user_resources"]).resolve())
    assert EXTENSION_MODULE in installed["enabled"]
    assert installed["module_file"] == str(Path(installed["repo_directory"]) / "choreo" / "__init__.py")
    files = set(installed["files"])
    assert {"blender_manifest.toml", "__init__.py"} <= files
    assert {f"wheels/{Path(w).name}" for w in MANIFEST["wheels"]} <= files
    assert {f"protocol/{p.name}" for p in (REPO_ROOT / "protocol").glob("*.py")} <= files
    assert not any(f.startswith(("backend/", "torch/")) for f in files)
    assert installed["repo_on_path"] == [], "the repository leaked onto the probe's sys.path"


def test_zmq_comes_from_the_wheels_and_protocol_from_inside_the_extension(probe: dict) -> None:
    installed = _stage(probe, "installed")
    imports = _stage(probe, "imports")
    site = installed["site_packages"]
    assert len(site) == 1, site
    assert imports["zmq_file"].startswith(site[0]), imports
    assert {imports["zmq_version"]} == PYZMQ_VERSION
    folder = Path(installed["repo_directory"]) / "choreo"
    assert imports["protocol_file"] == str(folder / "protocol" / "__init__.py"), imports
    assert imports["client"] == f"{EXTENSION_MODULE}.protocol.client"
    assert not (Path(site[0]) / "protocol").exists()  # nothing of ours in the shared site-packages
    # another extension's top-level protocol stayed what it was, and the only one by that name
    kind, other_file, loaded = imports["other_protocol"]
    assert kind == "not ours" and Path(other_file).parent.parent.name == "other-extension-site"
    assert loaded == ["protocol"]
    assert imports["encoded_header_bytes"] > 0


def test_installed_extension_generates_a_dance(probe: dict) -> None:
    gen = _stage(probe, "generate")
    assert gen["result"] == ["FINISHED"], gen
    assert "SMPL" in gen["objects"], gen
    assert gen["type"] == "ARMATURE", gen
    assert gen["bones"] >= 22, gen
    assert gen["action"], gen
    assert gen["fcurves"] > 0 and any(p.startswith("pose.bones[") for p in gen["data_paths"]), gen
    start, end = gen["frame_range"]
    seconds = (end - start + 1) / gen["fps"]
    assert abs(seconds - SECONDS) < 0.5, gen
    assert gen["keys_max"] >= 0.8 * SECONDS * gen["fps"], gen


# Blender's platform names, and what `sysconfig.get_platform()` says there.
SYSTEM_PLATFORMS = {"linux-x64": "linux-x86_64", "windows-x64": "win-amd64", "windows-arm64": "win-arm64",
                    "macos-arm64": "macosx-11.0-arm64", "macos-x64": "macosx-10.15-x86_64"}
WHEEL_PLATFORM = {"linux-x64": "-manylinux", "windows-x64": "-win_amd64", "windows-arm64": "-win_arm64",
                  "macos-arm64": "-macosx_", "macos-x64": "-macosx_"}
BLENDER_PYTHONS = {(4, 2, 0): (3, 11), (5, 0, 0): (3, 11), (5, 1, 0): (3, 13)}


@pytest.mark.parametrize("blender_version", sorted(BLENDER_PYTHONS), ids=lambda v: "blender-%d.%d" % v[:2])
def test_blenders_own_rules_accept_the_manifest_and_pick_one_pyzmq_everywhere(
        blender_version, monkeypatch: pytest.MonkeyPatch) -> None:
    """This Blender's extension code, asked as if it ran on each platform and Python we claim."""
    import sysconfig

    from bl_pkg import bl_extension_ops, bl_extension_utils

    python = BLENDER_PYTHONS[blender_version]
    wheels = MANIFEST["wheels"]
    # The Python versions Blender derives from the wheel names decide whether it loads the extension.
    python_versions = [".".join(map(str, v)) for v in bl_extension_utils.python_versions_from_wheels(wheels)]
    assert {"3.11", "3.13"} <= set(python_versions), python_versions
    for platform, system_platform in SYSTEM_PLATFORMS.items():
        assert platform in MANIFEST["platforms"]
        error = bl_extension_utils.pkg_manifest_params_compatible_or_error(
            blender_version_min=MANIFEST["blender_version_min"], blender_version_max="",
            platforms=MANIFEST["platforms"], python_versions=python_versions, this_platform=platform,
            this_blender_version=blender_version, this_python_version=(*python, 0), error_fn=print)
        assert error is None, (platform, error)
        with monkeypatch.context() as patch:
            patch.setattr(sysconfig, "get_platform", lambda: system_platform)
            patch.setattr(sys, "version_info", (*python, 0, "final", 0))
            chosen = [w.rsplit("/", 1)[-1] for w in bl_extension_ops._extensions_wheel_filter_for_this_system(wheels)]
        tag = "cp%d%d" % python
        assert len(chosen) == 1 and chosen[0].startswith("pyzmq-"), (platform, python, chosen)
        assert f"-{tag}-{tag}-" in chosen[0], (platform, python, chosen)
        assert WHEEL_PLATFORM[platform] in chosen[0], (platform, chosen)
