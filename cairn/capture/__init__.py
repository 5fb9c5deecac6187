"""Capture of ingredients from the machine a run starts on: files and their digests, the
git work tree, the Python environment. I/O lives here (below the faces, beside the
store); the values it makes are the pure blobs of :mod:`cairn.core.versioning`."""
