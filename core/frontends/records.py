"""``predict --json FILE`` / ``--csv FILE`` (``-``: standard output): one record per input,
skipped files included with their reason.

A record is built from the result dataclass's own fields (core.inference's prediction
types), so a field added there later (an out-of-distribution score, a true class) appears in
both formats without a second list of columns here.
"""
from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import fields

from core.paths import write_text_atomic

STDOUT = "-"
TOPK = "topk"  # [(class, probability)], most likely first: CSV columns class_1, probability_1…
NOT_RECORDED = ("thumb",)  # a preview's pixel bytes, not data about the prediction


def record(result) -> dict:
    """{"path", "status": "ok" | "skipped", "topk": [{"class", "probability"}], "error", …}."""
    out = {"path": result.path, "status": "skipped" if result.error else "ok"}
    for f in fields(result):
        if f.name not in NOT_RECORDED and f.name not in out:
            value = getattr(result, f.name)
            out[f.name] = ([{"class": c, "probability": _plain(p)} for c, p in value]
                           if f.name == TOPK else _plain(value))
    return out


def _plain(value):
    """JSON-ready: numpy scalars and arrays become numbers and lists, tuples lists."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def csv_row(rec: dict, k: int) -> dict:
    """One flat row: top-k as class_i / probability_i, other lists and objects as JSON."""
    row = {}
    for key, value in rec.items():
        if key == TOPK:
            for i in range(k):
                hit = value[i] if i < len(value) else {"class": "", "probability": ""}
                row[f"class_{i + 1}"], row[f"probability_{i + 1}"] = \
                    hit["class"], hit["probability"]
        else:
            row[key] = json.dumps(value) if isinstance(value, (list, dict)) else value
    return row


def to_json(records: list[dict]) -> str:
    return json.dumps(records, indent=2, ensure_ascii=False) + "\n"


def to_csv(records: list[dict], k: int) -> str:
    rows = [csv_row(r, k) for r in records]
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write(text: str, dest: str) -> None:
    if dest == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_text_atomic(dest, text)
