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
from rakuten_mlops.categories import CODES
from rakuten_mlops.ui import session
from rakuten_mlops.ui.labels import category_with_code
from rakuten_mlops.ui.monitoring_view import (
    PALETTE,
    drift_heatmap,
    drift_history,
    drift_table,
    live_headline,
    reference_warning,
    rules_in_words,
    series,
)

NO_DRIFT = (
    "No drift report yet — run `rakuten-mlops drift --current DATA` (DATA: a data folder, a .parquet, an "
    "X_*.csv or `predictions`) or `rakuten-mlops monitor check` to compare new listings with the "
    "champion's training data."
)


TIME_AXIS = alt.Axis(format="%Y-%m-%d %H:%M", labelAngle=-30, title="time (UTC)")


def _report_label(report: dict[str, Any]) -> str:
    current = (report.get("current") or {}).get("label", "")
    return f"{report.get('created_at', '?')} · {current} · drift share {report.get('drift_share', 0):.2f}"


def show_headline(
    reports: list[dict[str, Any]],
    live_quality: dict[str, Any],
    decisions: dict[str, Any],
    champion: str | None,
) -> None:
    """The four numbers to read first: drift share, drifted columns, live F1 (rows, trend), decision."""
    c1, c2, c3, c4 = st.columns(4)
    latest = reports[0] if reports else None
    if latest:
        c1.metric("Latest drift share", f"{latest.get('drift_share', 0):.2f}")
        c1.caption(f"of {latest.get('n_columns', 0)} columns, report of {latest.get('created_at', '?')}")
        drifted = latest.get("drifted_columns") or []
        c2.metric("Columns drifted", f"{len(drifted)} / {latest.get('n_columns', 0)}")
        c2.caption(", ".join(drifted) or "none")
    else:
        c1.metric("Latest drift share", "–")
        c2.metric("Columns drifted", "–")
    live = live_headline(series(live_quality["f1_over_time"], LIVE_COLUMNS), champion)
    if live:
        trend = f"{live['trend']:+.3f}" if live["trend"] is not None else None
        c3.metric(f"Live weighted F1 (v{live['version']})", f"{live['f1']:.3f}", delta=trend)
        c3.caption(f"on {live['n']} feedback rows in the last period ({live['total']} in all)")
    else:
        c3.metric("Live weighted F1", "–")
        c3.caption("no feedback yet")
    recent = decisions.get("decisions") or []
    if recent:
        c4.metric("Retrain decision", str(recent[0].get("decision", "–")))
        c4.caption(f"at {recent[0].get('recorded_at', '?')}")
    else:
        c4.metric("Retrain decision", "–")


def show_drift(user: UserSession, reports: list[dict[str, Any]], champion: str | None) -> None:
    st.header("Drift")
    if not reports:
        st.info(NO_DRIFT)
        return
    labels = [_report_label(r) for r in reports]
    chosen = st.selectbox("Report", labels, index=0, key="drift_report")
    report = reports[labels.index(chosen)]
    warning = reference_warning(report, champion)
    if warning:
        st.warning(warning, icon=":material/warning:")
    st.markdown(f"**{report.get('title', 'Drift report')}**")
    c1, c2, c3 = st.columns(3)
    c1.metric("Drift share", f"{report.get('drift_share', 0):.2f}")
    c2.metric("Drifted columns", f"{report.get('n_drifted', 0)} / {report.get('n_columns', 0)}")
    c3.metric("Dataset drift", "yes" if report.get("dataset_drift") else "no")
    drifted = ", ".join(report.get("drifted_columns", [])) or "none"
    st.caption(
        f"Drifted: {drifted}. Dataset drift when at least {report.get('drift_share_threshold', '?')} of "
        f"the columns drift. Reference: {(report.get('reference') or {}).get('source', '?')} "
        f"({report.get('reference_rows')} rows); current: {(report.get('current') or {}).get('source', '?')} "
        f"({report.get('current_rows')} rows)."
    )
    st.dataframe(
        drift_table(report),
        hide_index=True,
        width="stretch",
        column_config={"rule": st.column_config.TextColumn("rule", width="medium")},
    )
    for rule in rules_in_words(report):
        st.caption(f"• {rule}")
    for column, why in (report.get("skipped_columns") or {}).items():
        st.caption(f"Skipped {column}: {why}")
    history = drift_history(reports)
    if len(history) > 1:
        line = (
            alt.Chart(history)
            .mark_line(point=True)
            .encode(
                x=alt.X("time:T", axis=TIME_AXIS),
                y=alt.Y("drift_share:Q", scale=alt.Scale(domain=[0, 1]), title="drift share"),
                tooltip=[alt.Tooltip("time:T", format="%Y-%m-%d %H:%M"), "drift_share", "drifted", "current"],
            )
        )
        st.altair_chart(line.properties(title="Drift share over time"), width="stretch")
    cells = drift_heatmap(reports)
    if not cells.empty:
        heat = (
            alt.Chart(cells)
            .mark_rect(stroke="white")
            .encode(
                x=alt.X("batch:O", sort=list(dict.fromkeys(cells["batch"])), title="batch (time UTC · data)"),
                y=alt.Y("column:N", title=None),
                color=alt.Color(
                    "drifted:N",
                    scale=alt.Scale(domain=["stable", "drifted"], range=["#c6dbef", "#d62728"]),
                    title=None,
                ),
                tooltip=["batch", "column", "drifted", "score", "rule"],
            )
            .properties(title="Per-column drift across batches")
        )
        st.altair_chart(heat, width="stretch")
    if st.toggle("Show the full Evidently report", key="show_evidently"):
        if not report.get("has_html"):
            st.warning(f"report.html is missing from drift report {report['id']}")
            return
        try:
            html = session.api().drift_report_html(user.token, report["id"])
        except ApiError as exc:
            st.warning(exc.message)
            return
        st.download_button(
            "Open the report on its own (HTML, full browser width)", html,
            file_name=f"drift-{report['id']}.html", mime="text/html", key="evidently_download",
        )  # fmt: skip
        st.iframe(FIT_WIDTH + html, width="stretch", height=1000, alt="Evidently drift report")


# Evidently lays its widgets out for about 1,300 pixels: scaled down, they fit the page's column.
FIT_WIDTH = "<style>html{zoom:0.72}html,body{max-width:100%;overflow-x:auto;margin:0}</style>"
LIVE_COLUMNS = ["time", "model_version", "weighted_f1", "n"]


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
    over_time = series(live_quality["f1_over_time"], LIVE_COLUMNS)
    if over_time.empty:
        st.info(
            "No feedback yet: live F1 needs the true category of served predictions "
            "(`POST /v1/feedback`, or “Correct” / “Wrong category?” on the Predict page)."
        )
        return
    over_time["label"] = [
        f"v{v}: n={n}" for v, n in zip(over_time["model_version"], over_time["n"], strict=True)
    ]
    base = alt.Chart(over_time).encode(
        x=alt.X("time:T", axis=TIME_AXIS),
        y=alt.Y("weighted_f1:Q", scale=alt.Scale(domain=[0, 1]), title="weighted F1 of the feedback"),
        color=alt.Color("model_version:N", title="model version"),
        tooltip=[
            alt.Tooltip("time:T", format="%Y-%m-%d %H:%M"),
            "model_version",
            alt.Tooltip("weighted_f1:Q", format=".3f"),
            alt.Tooltip("n:Q", title="feedback rows"),
        ],
    )
    chart = base.mark_line(point=alt.OverlayMarkDef(size=80)) + base.mark_text(dy=-12).encode(text="label:N")
    st.altair_chart(
        chart.properties(title="Live weighted F1 per model version (labels: feedback rows per period)"),
        width="stretch",
    )
    st.caption(
        f"{live_quality['feedback_rows']} feedback rows in the last {live_quality['window_days']:g} days."
    )


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
    domain = [category_with_code(c, lang) for c in CODES]  # all 27, one fixed colour each
    chart = (
        alt.Chart(share)
        .mark_bar()
        .encode(
            x=alt.X("period:O", title="period (UTC)", axis=alt.Axis(labelAngle=-30)),
            y=alt.Y("rows:Q", stack="normalize", title="share of predictions"),
            color=alt.Color(
                "category:N",
                scale=alt.Scale(domain=domain, range=PALETTE),
                legend=alt.Legend(columns=1, labelLimit=260, symbolLimit=0),
            ),
            tooltip=["period", "category", "rows", alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(height=560)
    )
    st.altair_chart(chart, width="stretch")
    st.caption(f"{live_quality['prediction_rows']} most recent predictions.")


def show_decisions(answer: dict[str, Any]) -> None:
    st.header("Retrain decisions")
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
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
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
    try:
        reports = session.api().drift_reports(user.token)["reports"]
        live_quality = session.api().live_quality(user.token)
        decisions = session.api().retrain_decisions(user.token)
    except ApiError as exc:
        session.fail(exc)
    served = session.served_model(user) or {}
    champion = str(served["version"]) if served.get("version") else None
    show_headline(reports, live_quality, decisions, champion)
    show_drift(user, reports, champion)
    show_live(live_quality)
    show_predicted_classes(live_quality, session.lang())
    show_decisions(decisions)


if __name__ == "__main__":
    main()
