"""The installed version of mlre, readable from every layer without importing the package root."""

from importlib import metadata

try:
    __version__ = metadata.version("mlre")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
