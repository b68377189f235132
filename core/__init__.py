"""TransferLab's headless engine: models, data, freezing, training, prediction.

Nothing in this package imports Qt (an import-linter contract checks it), so the CLI, the
tests and the GUI drive exactly the same code. The one exception is ``core.frontends.qt_worker``,
the thin adapter that turns engine events into Qt signals.
"""
