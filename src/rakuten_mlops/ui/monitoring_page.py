"""Monitoring page: drift reports (summary + Evidently HTML), live F1 and predicted classes over time,
retrain decisions.

Read through the API's monitoring routes (`GET /v1/monitoring/...`), which are for admins: they
describe every user's predictions and feedback.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from rakuten_mlops.api_client import ApiError, UserSession
from rakuten_mlops.ui import session
from rakuten_mlops.ui.labels import category_with_code
from rakuten_mlops.ui.monitoring_view import drift_columns, drift_history, series

NO_DRIFT = (
    "No drift report yet — run `rakuten-mlops drift --current DATA` (DATA: a data folder, a .parquet, an "
    "X_*.csv or `predictions`) or `rakuten-mlops monitor check` to compare new listings with the "
    "champion's training data."
)


def _report_label(report: dict[str, Any]) -> str:
    current = (report.get("current") or {}).get("label", "")
    return f"{report.get('created_at', '?')} · {current} · drift share {report.get('drift_share', 0):.2f}"


def show_drift(user: UserSession) -> None:
    st.header("Drift")
    try:
        reports = session.api().drift_reports(user.token)["reports"]
    except ApiError as exc:
        session.fail(exc)
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
        if not report.get("has_html"):
            st.warning(f"report.html is missing from drift report {report['id']}")
            return
        try:
            html = session.api().drift_report_html(user.token, report["id"])
        except ApiError as exc:
            st.warning(exc.message)
            return
        st.iframe(html, height=900, alt="Evidently drift report")


def show_live(live_quality: dict[str, Any]) -> None:
    st.header("Live quality")
    live = live_quality.get("latest")
    if live and live.get("versions"):
        rows = [{"model version": v, **scores} for v, scores in live["versions"].items()]
        st.caption(
            f"Last computed {live.get('computed_at')} over {live.get('window_days')} days; "
            f"champion version {live.get('champion_version')}."
        )
        st.dataframe(pd.DataFrame(rows), hide_index=True)
    if live_quality.get("feedback_error"):
        st.warning(f"Feedback cannot be read from the app database: {live_quality['feedback_error']}")
        return
    over_time = series(live_quality["f1_over_time"], ["time", "model_version", "weighted_f1", "n"])
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
    st.caption(f"{live_quality['feedback_rows']} feedback rows.")


def show_predicted_classes(live_quality: dict[str, Any], lang: str) -> None:
    st.header("Predicted categories over time")
    if live_quality.get("predictions_error"):
        st.warning(f"Predictions cannot be read from the app database: {live_quality['predictions_error']}")
        return
    share = series(live_quality["class_share"], ["time", "code", "rows", "share"])
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
    st.caption(f"{live_quality['prediction_rows']} most recent predictions.")


def show_decisions(user: UserSession) -> None:
    st.header("Retrain decisions")
    try:
        answer = session.api().retrain_decisions(user.token)
    except ApiError as exc:
        session.fail(exc)
    recent = answer["decisions"]
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
    runs = answer["retrains"]
    if runs:
        st.subheader("Retrains")
        st.dataframe(pd.DataFrame(runs), hide_index=True)


def main() -> None:
    user = session.require_login()
    st.title("Monitoring")
    if not user.is_admin:
        st.info(
            "Monitoring is for admins: drift reports, live quality and retrain decisions describe "
            "every user's predictions and feedback."
        )
        st.stop()
    st.caption(f"Reports and live quality from the API at {session.api_url()}")
    show_drift(user)
    try:
        live_quality = session.api().live_quality(user.token)
    except ApiError as exc:
        session.fail(exc)
    show_live(live_quality)
    show_predicted_classes(live_quality, session.lang())
    show_decisions(user)


if __name__ == "__main__":
    main()
