"""The data doctor: find label issues, duplicates (train/val leakage apart), outliers and the
set's own problems (``check.run_check``); the dataset map (``embedding``). Changes to the
files go through the review journal (core.review)."""
