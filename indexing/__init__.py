"""Buscador Visual's engine: turn a collection of images into a CLIP + FAISS index and search it.

Data flows one way: sources → embedder → store → search. The CLI (`python -m indexing`) and the
Gradio app are thin layers over these modules.
"""

import os

if os.name == "nt":  # fcntl (the build lock) and os.pread (vector reads) are POSIX
    raise ImportError("Buscador Visual runs on Linux and macOS; on Windows, run it in WSL")
