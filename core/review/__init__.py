"""The review of a dataset folder: a journal of every change (relabel, remove, keep, undo,
redo) written before any file moves, and the session that makes those changes safely.
Torch-free, below the engine: a run asks ``core.review.journal.journal_state`` which review
state its data had."""
