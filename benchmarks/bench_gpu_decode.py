"""How fast a GPU decodes JPEGs itself (nvJPEG through torchvision), against the build's decode
processes: the way past the CPU-bound feeding that caps a GPU build (issue #8). Prints figures;
asserts nothing. Needs CUDA and torchvision, which the project does not install: run it on a GPU
machine that has them.

Per batch of 128 files already read into memory: nvJPEG decode at full size, then CLIP's bicubic
resize (antialiased, short side 224) and centre crop on the GPU. Also the crops' difference from
the build's own (`clip_pixels` of a reduced-size CPU decode), in 0-255 levels.

Usage: python -m benchmarks.bench_gpu_decode [--images 2000] [--size 1024x768]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from benchmarks.photos import photo_files
from indexing.images import clip_pixels, load_image


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", default="1024x768")
    args = parser.parse_args()
    import torch

    try:
        import torchvision
        from torchvision.io import decode_jpeg
    except ImportError:
        print("torchvision is not installed: nothing to measure")
        return
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return
    width, height = (int(n) for n in args.size.lower().split("x"))
    paths = photo_files(args.images, (width, height))
    files = [torch.frombuffer(bytearray(p.read_bytes()), dtype=torch.uint8) for p in paths]

    def crops(batch: list[torch.Tensor]) -> torch.Tensor:
        images = decode_jpeg(batch, device="cuda")
        out = []
        for image in images:  # sizes may differ from file to file
            h, w = image.shape[1:]
            scale = 224 / min(h, w)
            size = (max(224, int(h * scale)), max(224, int(w * scale)))
            x = torch.nn.functional.interpolate(
                image[None].float(), size=size, mode="bicubic", antialias=True, align_corners=False
            )
            top, left = (size[0] - 224) // 2, (size[1] - 224) // 2
            out.append(x[0, :, top : top + 224, left : left + 224])
        return torch.stack(out).round_().clamp_(0, 255).to(torch.uint8)

    crops(files[:128])  # warm up nvJPEG and the kernels
    torch.cuda.synchronize()
    started = time.perf_counter()
    for i in range(0, len(files), 128):
        crops(files[i : i + 128])
    torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    gpu = crops(files[:20]).permute(0, 2, 3, 1).cpu().numpy().astype(np.int16)
    cpu = np.stack([clip_pixels(load_image(p, min_side=224), 224, fast=True) for p in paths[:20]])
    diff = np.abs(gpu - cpu.astype(np.int16))
    print(
        f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.cuda.get_device_name()}: "
        f"nvJPEG decode + resize + crop of {len(files)} {width}×{height} JPEGs: "
        f"{len(files) / seconds:.0f} images/s (batches of 128); crops against the build's: "
        f"mean |diff| {diff.mean():.2f}/255, 99.9th percentile {np.percentile(diff, 99.9):.0f}/255"
    )


if __name__ == "__main__":
    main()
