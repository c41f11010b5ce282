"""sqlflow: a folder of SQL SELECT files, built, tested and documented in a warehouse."""

__version__ = "0.1.0"
