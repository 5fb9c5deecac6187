"""Versioning of ingredients, as pure values: blobs, hierarchical trees, commits, typed
diffs and three-way merges. Capture (git, the Python environment, files) and storage live
in the layers above; :mod:`cairn.versioning` is the public face."""
