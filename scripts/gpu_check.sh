#!/usr/bin/env bash
# GPU check (issue 19): the GPU-relevant tests and benchmarks on one CUDA device, in under 8 minutes, with their
# figures gathered in one JSON file.
#
#   scripts/gpu_check.sh [OUT.json]        (default gpu_check.json; run from the repository root)
#
# Steps, each under its own timeout (total at most 470 s): tests/test_gpu.py (jets, trainer and solve on CUDA,
# the compiled KAN kernels);
# bench.py --device cuda, float64 then float32 with TF32: the [2,10,1] G=10 protocol row (kanpde-jet, -autograd,
# mlp-autograd, mlp-jet) and the trainer-vs-DeepXDE steps on burgers and poisson; the quick start on CUDA. Exits 2
# at once, with one line, when torch sees no CUDA device.
set -uo pipefail
out="${1:-gpu_check.json}"
cd "$(dirname "$0")/.."
if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check.sh: no CUDA device (torch.cuda.is_available() is False): nothing run" >&2
    exit 2
fi
work="$(mktemp -d)"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" DDE_BACKEND=pytorch
status=()
step() {  # step NAME SECONDS COMMAND...: run, record the exit status and the seconds taken
    local name="$1" limit="$2" start=$SECONDS
    shift 2
    echo "== $name (at most $limit s)" >&2
    timeout "$limit" "$@" > "$work/$name.log" 2>&1
    local rc=$?
    status+=("\"$name\": {\"rc\": $rc, \"seconds\": $((SECONDS - start))}")
    tail -n 5 "$work/$name.log" >&2
}
step tests 140 python -m pytest -q -p no:cacheprovider tests/test_gpu.py --junitxml "$work/tests.xml"
step bench_float64 90 python scripts/bench.py --device cuda --dtype float64 --groups main --shapes "2,10,1:10" \
    --repeats 5 --no-pykan --json "$work/bench_float64.json"
step bench_float32_tf32 90 python scripts/bench.py --device cuda --dtype float32 --tf32 --groups main \
    --shapes "2,10,1:10" --repeats 5 --no-pykan --json "$work/bench_float32_tf32.json"
step steps_float64 90 python scripts/bench.py --device cuda --dtype float64 --groups burgers-step,poisson-step \
    --repeats 5 --no-compile --json "$work/steps_float64.json"
step quick_start 60 python -m kanpde solve poisson.yaml --device cuda --out "$work/quick_start" --quiet --force
python - "$work" "$out" "{$(IFS=,; echo "${status[*]}")}" <<'PY'
import json, pathlib, sys, xml.etree.ElementTree as ET
import torch
work, out, status = pathlib.Path(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cuda": torch.version.cuda,
          "steps": status, "work_dir": str(work)}
if (work / "tests.xml").exists():
    suite = ET.parse(work / "tests.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    result["tests"] = {key: int(suite.get(key, 0)) for key in ("tests", "failures", "errors", "skipped")}
for name in ("bench_float64", "bench_float32_tf32", "steps_float64"):
    path = work / f"{name}.json"
    if path.exists():
        data = json.loads(path.read_text())
        result[name] = {"rows": [{k: row[k] for k in ("contender", "group", "shape", "grid", "points", "dtype",
                                                        "median_s", "min_s", "memory_bytes")} for row in data["rows"]],
                        "derived": {k: v for k, v in data["derived"].items() if k != "points_scaling"}}
summary = work / "quick_start" / "summary.json"
if summary.exists():
    data = json.loads(summary.read_text())
    result["quick_start"] = {k: data.get(k) for k in ("rel_l2", "train_seconds", "seconds_per_step", "device")}
pathlib.Path(out).write_text(json.dumps(result, indent=1))
print(f"gpu_check.sh: wrote {out}", file=sys.stderr)
sys.exit(1 if any(s["rc"] != 0 for s in status.values()) else 0)
PY
