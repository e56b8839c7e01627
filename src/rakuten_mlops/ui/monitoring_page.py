"""Monitoring page: drift reports (summary + Evidently HTML), live F1 and predicted classes over time,
retrain decisions."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from rakuten_mlops.config import Settings
from rakuten_mlops.ui import session
from rakuten_mlops.ui.labels import category_with_code
from rakuten_mlops.ui.monitoring_view import (
    class_share_over_time,
    decisions,
    drift_columns,
    drift_history,
    drift_reports,
    live_f1_over_time,
    live_latest,
    read_feedback,
    read_predictions,
    report_html_path,
    retrains,
)

NO_DRIFT = (
    "No drift report yet — run `rakuten-mlops drift --current DATA` (DATA: a data folder, a .parquet, an "
    "X_*.csv or `predictions`) or `rakuten-mlops monitor check` to compare new listings with the "
    "champion's training data."
)


def _report_label(report: dict[str, Any]) -> str:
    current = (report.get("current") or {}).get("label", "")
    return f"{report.get('created_at', '?')} · {current} · drift share {report.get('drift_share', 0):.2f}"


def show_drift(s: Settings) -> None:
    st.header("Drift")
    reports = drift_reports(s)
    if not reports:
        st.info(NO_DRIFT)
        return
    labels = [_report_label(r) for r in reports]
    chosen = st.selectbox("Report", labels, index=0, key="drift_report")
    report = reports[labels.index(chosen)]
    st.markdown(f"**{report.get('title', 'Drift report')}**")
    c1, c2, c3 = st.columns(3)
    c1.metric("Drift share", f"{report.get('drift_share', 0):.2f}")
    c2.metric("Drifted columns", f"{report.get('n_drifted', 0)} / {report.get('n_columns', 0)}")
    c3.metric("Dataset drift", "yes" if report.get("dataset_drift") else "no")
    drifted = ", ".join(report.get("drifted_columns", [])) or "none"
    st.caption(
        f"Drifted: {drifted}. Reference: {(report.get('reference') or {}).get('source', '?')} "
        f"({report.get('reference_rows')} rows); current: {(report.get('current') or {}).get('source', '?')} "
        f"({report.get('current_rows')} rows)."
    )
    st.dataframe(drift_columns(report), hide_index=True)
    for column, why in (report.get("skipped_columns") or {}).items():
        st.caption(f"Skipped {column}: {why}")
    history = drift_history(reports)
    if len(history) > 1:
        line = (
            alt.Chart(history)
            .mark_line(point=True)
            .encode(
                x=alt.X("time:T", title=None),
                y=alt.Y("drift_share:Q", scale=alt.Scale(domain=[0, 1]), title="drift share"),
                tooltip=["time:T", "drift_share", "drifted", "current"],
            )
        )
        st.altair_chart(line.properties(title="Drift share over time"), width="stretch")
    if st.toggle("Show the full Evidently report", key="show_evidently"):
        path = report_html_path(report)
        if path is None:
            st.warning(f"report.html is missing from {report['folder']}")
        else:
            st.iframe(path, height=900, alt="Evidently drift report")


def show_live(s: Settings) -> None:
    st.header("Live quality")
    live = live_latest(s)
    if live and live.get("versions"):
        rows = [{"model version": v, **scores} for v, scores in live["versions"].items()]
        st.caption(
            f"Last computed {live.get('computed_at')} over {live.get('window_days')} days; "
            f"champion version {live.get('champion_version')}."
        )
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    try:
        over_time = live_f1_over_time(read_feedback(s))
    except (ConnectionError, ImportError) as exc:
        st.warning(f"Feedback cannot be read from the app database: {exc}")
        return
    if over_time.empty:
        st.info(
            "No feedback yet: live F1 needs the true category of served predictions "
            "(`POST /v1/feedback`, or “Wrong category?” on the Predict page)."
        )
        return
    chart = (
        alt.Chart(over_time)
        .mark_line(point=True)
        .encode(
            x=alt.X("time:T", title=None),
            y=alt.Y("weighted_f1:Q", scale=alt.Scale(domain=[0, 1]), title="weighted F1"),
            color=alt.Color("model_version:N", title="model version"),
            tooltip=["time:T", "model_version", alt.Tooltip("weighted_f1:Q", format=".3f"), "n"],
        )
    )
    st.altair_chart(chart.properties(title="Live weighted F1 over time"), width="stretch")
    st.caption(f"{int(over_time['n'].sum())} feedback rows.")


def show_predicted_classes(s: Settings, lang: str) -> None:
    st.header("Predicted categories over time")
    try:
        share = class_share_over_time(read_predictions(s))
    except (ConnectionError, ImportError) as exc:
        st.warning(f"Predictions cannot be read from the app database: {exc}")
        return
    if share.empty:
        st.info("No logged predictions yet: they appear here once the API has served some.")
        return
    share["category"] = [category_with_code(c, lang) for c in share["code"]]
    share["period"] = share["time"].dt.strftime("%Y-%m-%d %H:%M UTC")
    chart = (
        alt.Chart(share)
        .mark_bar()
        .encode(
            x=alt.X("period:O", title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("rows:Q", stack="normalize", title="share of predictions"),
            color=alt.Color("category:N", legend=alt.Legend(columns=1, labelLimit=260)),
            tooltip=["period", "category", "rows", alt.Tooltip("share:Q", format=".1%")],
        )
    )
    st.altair_chart(chart, width="stretch")
    st.caption(f"{int(share['rows'].sum())} most recent predictions.")


def show_decisions(s: Settings) -> None:
    st.header("Retrain decisions")
    recent = decisions(s)
    if not recent:
        st.info("No retrain decision yet — run `rakuten-mlops monitor check`.")
    else:
        rows = [
            {
                "recorded": d.get("recorded_at"),
                "decision": d.get("decision"),
                "reasons": "; ".join(d.get("reasons", [])),
                "champion version": d.get("champion_version"),
                "drift share": (d.get("drift") or {}).get("drift_share"),
                "new labelled rows": d.get("new_labelled_rows"),
            }
            for d in recent
        ]
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    runs = retrains(s)
    if runs:
        st.subheader("Retrains")
        st.dataframe(pd.DataFrame(runs), hide_index=True)


def main() -> None:
    session.require_login()
    s = session.settings()
    st.title("Monitoring")
    st.caption(f"Reports under {s.home.resolve() / 'monitoring'}")
    show_drift(s)
    show_live(s)
    show_predicted_classes(s, session.lang())
    show_decisions(s)


if __name__ == "__main__":
    main()
