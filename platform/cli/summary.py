"""The demo summary as a table for people."""

from __future__ import annotations


def render_summary(summary: dict) -> str:
    d, m, p, s, mon = (summary[k] for k in ("dataset", "model", "predictions", "serving", "monitoring"))
    rows = [
        ("dataset", f"{d['name']} v{d['version']} ({d['rows']} rows{', new' if d['new_version'] else ', unchanged'})"),
        ("candidate", f"{m['name']} v{m['candidate_version']}"),
        ("production", f"v{m['production_version']} ({'promoted' if m['promoted'] else 'kept'}: {m['decision']})"),
        (f"production {m['metric']}", f"{m['value']:.4f}"),
        ("predictions", f"{p['rows_written']} rows, batch {p['batch_id']}"),
        ("serving", f"{s['url']} v{s['version']}: /invocations {'OK' if s['invocation_ok'] else 'MISMATCH'}"),
        ("monitoring", _monitoring(mon)),
        ("seconds", ", ".join(f"{k} {v:.1f}" for k, v in summary["seconds"].items())),
        ("home", summary["home"]),
    ]
    width = max(len(k) for k, _ in rows)
    line = "+" + "-" * (width + 2) + "+" + "-" * 72
    body = [f"| {k.ljust(width)} | {v}" for k, v in rows]
    return "\n".join([line, *body, line])


def _monitoring(mon: dict) -> str:
    candidate = "n/a" if mon["candidate_score"] is None else f"{mon['candidate_score']:.4f}"
    return (
        f"production {mon['production_score']:.4f}, candidate {candidate} on {mon['held_out_rows']} held-out rows; "
        f"{mon['drifted_features']} drifted features"
    )
