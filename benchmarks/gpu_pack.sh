#!/usr/bin/env bash
# Pack what a GPU session needs into .gpu/ (ignored by git), run HERE before the device call.
#
# The lent GPU machine (an H200 with python3 3.12 and torch, no network) lacks some of the
# backend's dependencies, and ../shared/data does not travel with the working tree. So this
# writes, for `run(..., carry=[".gpu"])`:
#   .gpu/wheels/*.whl   the missing packages, for CPython 3.12 manylinux x86_64, at the versions
#                       this checkout's Python has (what the tests ran on)
#   .gpu/data.tar.xz    ../shared/data (CMU BVH, Sectoid songs, README, licences), its BVH files
#                       packed losslessly by benchmarks/bvh_pack.py (the session rebuilds them byte for byte)
# and prints the sizes beside the tracked tree's, against the 64 MiB the device call carries.
# benchmarks/gpu_session.sh (run there) installs the wheels and unpacks the data.
#
#   bash benchmarks/gpu_pack.sh          # pack (the tarball is kept when present: FORCE_DATA=1 remakes it)
#   bash benchmarks/gpu_pack.sh --list   # print WHEELS and DEVICE_HAS, one name a line (tests read it)
# Environment: PYTHON (default .venv/bin/python), DATA (default ../shared/data), XZ_LEVEL (default 9).
set -euo pipefail

# The backend's runtime dependencies (pyproject.toml) and theirs, minus what the device image has.
# Found by reading pyproject.toml and each wheel's Requires-Dist; the check below fails when a
# requirement is in neither list.
WHEELS=(librosa pyzmq soundfile soxr audioread pooch platformdirs decorator cffi pycparser smplx)
# What the device image already holds that those need (/work/.library/device/KINDS.md lists it).
DEVICE_HAS=(torch numpy scipy numba llvmlite joblib lazy_loader msgpack scikit-learn typing-extensions
            requests packaging tqdm matplotlib)
# Wheel tags the device's CPython 3.12 (glibc 2.39) accepts; pip matches each tag exactly.
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_26_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux1_x86_64)
LIMIT_MIB=64

if [[ "${1:-}" == "--list" ]]; then
    printf 'wheel %s\n' "${WHEELS[@]}"
    printf 'device %s\n' "${DEVICE_HAS[@]}"
    exit 0
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
DATA=${DATA:-$REPO/../shared/data}
PACK=$REPO/.gpu
mkdir -p "$PACK/wheels"
grep -qx '/.gpu/' .gitignore || { echo "error: /.gpu/ is not in .gitignore: the pack would travel as untracked files" >&2; exit 1; }

# -- wheels, at the versions this checkout's Python runs
rm -f "$PACK"/wheels/*.whl
specs=()
for name in "${WHEELS[@]}"; do
    specs+=("$name==$("$PYTHON" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name")")
done
platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platform_args[@]}" -d "$PACK/wheels" "${specs[@]}"

# -- every requirement of every wheel (markers evaluated for CPython 3.12 on Linux) is covered
"$PYTHON" - "$PACK/wheels" "${WHEELS[*]}" "${DEVICE_HAS[*]}" <<'EOF'
import re, sys, zipfile
from pathlib import Path
from packaging.requirements import Requirement

def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()

folder, wheels, device = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split()
covered = {norm(n) for n in wheels + device}
env = {"python_version": "3.12", "python_full_version": "3.12.3", "implementation_name": "cpython",
       "platform_python_implementation": "CPython", "sys_platform": "linux", "platform_system": "Linux",
       "platform_machine": "x86_64", "os_name": "posix", "extra": ""}
found, missing = set(), []
for whl in sorted(folder.glob("*.whl")):
    with zipfile.ZipFile(whl) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    name = next(line.split(":", 1)[1].strip() for line in meta.splitlines() if line.startswith("Name:"))
    found.add(norm(name))
    for line in meta.splitlines():
        if line.startswith("Requires-Dist:"):
            req = Requirement(line.split(":", 1)[1].strip())
            if (req.marker is None or req.marker.evaluate(env)) and norm(req.name) not in covered:
                missing.append(f"{name} needs {req}")
absent = sorted({norm(n) for n in wheels} - found)
if absent or missing:
    sys.exit("error: " + "; ".join([f"no wheel for {n}" for n in absent] + missing))
print(f"wheels: {len(found)} packages, every requirement covered")
EOF

# -- the shared data: BVH packed losslessly (benchmarks/bvh_pack.py: a third smaller under xz than
#    the text, which alone would not fit), then tar + xz; kept when present, the shared data does not change
if [[ ! -s "$PACK/data.tar.xz" || "${FORCE_DATA:-0}" == 1 ]]; then
    [[ -f "$DATA/mocap/cmu/05_02.bvh" && -d "$DATA/music/sectoid" ]] || { echo "error: no shared data at $DATA" >&2; exit 1; }
    stage=$(mktemp -d /tmp/choreo_pack.XXXXXX)
    trap 'rm -rf "$stage"' EXIT
    "$PYTHON" benchmarks/bvh_pack.py pack "$DATA" "$stage/data"
    echo "compressing (xz -${XZ_LEVEL:-9}; minutes on two cores)"
    tar -C "$stage" -cf - data | xz "-${XZ_LEVEL:-9}" -T0 > "$PACK/data.tar.xz.tmp"
    mv "$PACK/data.tar.xz.tmp" "$PACK/data.tar.xz"
fi

# -- sizes against what one device call carries
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
tracked=$(git ls-files -z | xargs -0 stat -c %s 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r stat -c %s | awk '{ s += $1 } END { print s + 0 }')
wheels=$(stat -c %s "$PACK"/wheels/*.whl | awk '{ s += $1 } END { print s + 0 }')
data=$(stat -c %s "$PACK/data.tar.xz")
total=$((tracked + untracked + wheels + data))
echo "tracked tree $(mib "$tracked"), untracked $(mib "$untracked"), wheels $(mib "$wheels"), data $(mib "$data")"
echo "total that travels with carry=[\".gpu\"]: $(mib "$total") of ${LIMIT_MIB} MiB"
if (( total > LIMIT_MIB * 1048576 )); then
    echo "error: over the device call's ${LIMIT_MIB} MiB" >&2
    exit 1
fi
