"""Prerequisites of benchmarks/gpu.sh: every module abawkit and its GPU tests import, and a CUDA device.

Prints one line per missing module (with the pip name) and exits 3; exits 4 when torch sees no CUDA device
(``--allow-cpu``: only report it). Run by gpu.sh before anything else, so a bare image fails in seconds
with a list instead of printing a table of empty cells.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# import name -> pip name (what benchmarks/gpu_wheels.txt or the image must provide)
MODULES = {
    "torch": "torch", "torchvision": "torchvision", "torchaudio": "torchaudio", "timm": "timm",
    "transformers": "transformers", "safetensors": "safetensors", "typer": "typer", "rich": "rich",
    "numpy": "numpy", "scipy": "scipy", "pandas": "pandas", "pyarrow": "pyarrow", "sklearn": "scikit-learn",
    "joblib": "joblib", "matplotlib": "matplotlib", "PIL": "pillow", "cv2": "opencv-python-headless",
    "av": "av", "soundfile": "soundfile", "facenet_pytorch": "facenet-pytorch", "pytest": "pytest",
}


def missing_modules() -> list[str]:
    """'module (pip name): reason' for each module that does not import."""
    out = []
    for mod, pip in MODULES.items():
        try:
            importlib.import_module(mod)
        except Exception as exc:  # noqa: BLE001 - a broken install (missing .so) is as missing as an absent one
            out.append(f"{mod} (pip: {pip}): {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--allow-cpu", action="store_true", help="no CUDA device is not an error (SMOKE=1)")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]} at {sys.executable}")
    missing = missing_modules()
    if missing:
        print("missing prerequisites:")
        for m in missing:
            print(f"  {m}")
        print("fetch the wheels a bare image lacks with `bash benchmarks/gpu_wheels.sh` on a machine with PyPI, "
              "copy .whl/ into the project here and run gpu.sh again; or install the modules above")
        return 3
    import torch

    if torch.cuda.is_available():
        print(f"device: {torch.cuda.get_device_name(0)}")
    else:
        print(f"device: none (CPU); torch {torch.__version__} built for CUDA {torch.version.cuda}")
        if not args.allow_cpu:
            print("no CUDA device visible to torch: gpu.sh measures a GPU (SMOKE=1 checks the script on a CPU)")
            return 4
    print(f"torch: {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
