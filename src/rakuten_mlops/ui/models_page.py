"""Models page: registry versions, metrics, the champion, promotion decisions, per-class F1, confusion
matrix and the model card.

Everything is read through the API's registry routes (`GET /v1/models/...`). Admins can promote a
version or roll back: the API checks the role, moves the alias and loads the new champion at once
(the UI itself never reads or writes the registry).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import altair as alt
import streamlit as st

from rakuten_mlops.api_client import ApiError, UserSession
from rakuten_mlops.ui import session
from rakuten_mlops.ui.charts import LABELS
from rakuten_mlops.ui.registry_view import (
    champion_of,
    class_scores,
    comparison_text,
    confusion_cells,
    head_to_head,
    history_frame,
    metric_with_rows,
    versions_table,
)
from rakuten_mlops.ui.shadow_view import show_shadow

PENDING_KEY = "models_pending_change"  # ("promote", version) or ("rollback", version) awaiting confirmation


def show_champion(champion: dict[str, Any] | None) -> None:
    if champion is None:
        st.warning("No version holds the `champion` alias: the API has nothing to serve yet.")
        return
    st.subheader(f"Champion: version {champion['version']}")
    c1, c2, c3 = st.columns(3)
    value, help_text = metric_with_rows(champion, "gold_system_weighted_f1", "gold_rows")
    c1.metric("Gold weighted F1", value, help=help_text)
    c1.caption(help_text)
    value, help_text = metric_with_rows(champion, "test_system_weighted_f1", "test_rows")
    c2.metric("Test weighted F1", value, help=help_text)
    c2.caption(help_text)
    c3.metric("Modalities", champion["tags"].get("modalities", "–"))
    decision = champion["tags"].get("promotion.decision")
    if decision:
        st.caption(f"Decision: {decision}. Reasons: {champion['tags'].get('promotion.reasons', '–')}")


def show_head_to_head(comparison: dict[str, Any], version: str) -> None:
    """The gate's comparison of this version with the champion of the time, on the same gold rows."""
    st.markdown("##### Head-to-head on the same gold rows (the promotion gate's comparison)")
    if not comparison["compared"]:
        st.info(comparison["text"])
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(f"Version {version}", f"{comparison['mine']:.4f}" if comparison["mine"] is not None else "–")
    if comparison.get("against"):
        c2.metric(f"Champion then (v{comparison['against']})", f"{comparison['theirs']:.4f}")
        c3.metric("Gain", f"{comparison['gain']:+.4f}")
    c4.metric("Gold rows", str(comparison["rows"] or "–"))
    show = st.success if comparison["verdict"] == "passed" else st.warning
    show(comparison["text"])
    if comparison["reasons"]:
        st.caption(f"Gate reasons ({comparison['decided_at'] or 'time unknown'}): {comparison['reasons']}")


COMPARE_KEY = "models_compare"  # {(version, "result" | "error"): answer} of the on-demand comparison


def show_compare_with_champion(user: UserSession, version: str, champion: str | None) -> None:
    """A button: this version and today's champion, scored now by the API on this version's gold rows."""
    answers: dict[tuple[str, str], Any] = st.session_state.setdefault(COMPARE_KEY, {})
    if st.button("Compare with the champion on this version's gold rows", key="compare_champion"):
        answers.pop((version, "result"), None)
        answers.pop((version, "error"), None)
        with st.spinner(f"The API is scoring version {version} and the champion…"):
            try:
                answers[(version, "result")] = session.api().compare_with_champion(user.token, version)
            except ApiError as exc:
                if exc.status is None or exc.status == 401 or exc.status >= 500:
                    answers[(version, "error")] = exc.message
                else:  # 404 / 409: the API's own sentence says why (no champion, no gold rows kept...)
                    answers[(version, "error")] = exc.detail or exc.message
    error = answers.get((version, "error"))
    if error:
        st.info(error)
        return
    result = answers.get((version, "result"))
    if result is None:
        return
    if champion is not None and result["champion_version"] != champion:
        st.caption(f"Measured against version {result['champion_version']}, champion at the time.")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric(f"Version {result['version']}", f"{result['version_f1']:.4f}")
    c2.metric(f"Champion (v{result['champion_version']})", f"{result['champion_f1']:.4f}")
    interval = result["interval"]
    c3.metric(
        "Difference", f"{result['difference']:+.4f}",
        help=f"{interval['level']:.0%} interval [{interval['low']:+.4f}, {interval['high']:+.4f}]",
    )  # fmt: skip
    c4.metric("Gold rows", str(result["rows"]))
    show = st.success if result["would_pass_gate"] else st.warning
    show(comparison_text(result))


def show_class_scores(scores: Any, test_rows: int | None) -> None:
    if scores.empty:
        st.info("This version's run logged no per-class scores.")
        return
    chart = (
        alt.Chart(scores)
        .mark_bar()
        .encode(
            x=alt.X("f1:Q", scale=alt.Scale(domain=[0, 1]), title=f"F1 (test set, {test_rows or '?'} rows)"),
            y=alt.Y("category:N", sort="x", title=None, axis=LABELS),
            tooltip=[
                "category",
                alt.Tooltip("f1:Q", format=".3f"),
                alt.Tooltip("precision:Q", format=".3f"),
                alt.Tooltip("recall:Q", format=".3f"),
                alt.Tooltip("rows:Q", title="test rows"),
            ],
        )
        .properties(title="Per-class F1 (with each class's test rows)", height=alt.Step(20))
    )
    st.altair_chart(chart, width="stretch")


def show_confusion(user: UserSession, version: str, evaluation: dict[str, Any], lang: str) -> None:
    confusion = evaluation.get("confusion")
    if confusion:
        cells = confusion_cells(confusion, lang)
        share = st.toggle("Colour by share of the true class", value=True, key="confusion_share")
        colour = "share of true class:Q" if share else "count:Q"
        order = list(dict.fromkeys(cells["true"]))
        chart = (
            alt.Chart(cells)
            .mark_rect()
            .encode(
                x=alt.X(
                    "predicted:N",
                    sort=order,
                    title="predicted",
                    axis=alt.Axis(labelLimit=160, labelOverlap=False),
                ),
                y=alt.Y("true:N", sort=order, title="true", axis=LABELS),
                color=alt.Color(colour, scale=alt.Scale(scheme="blues")),
                tooltip=[
                    "true",
                    "predicted",
                    "count:Q",
                    alt.Tooltip("share of true class:Q", format=".1%"),
                    "examples",
                ],
            )
            .properties(
                title=f"Confusion matrix, test set ({confusion['rows']} rows; hover a cell for examples)",
                height=alt.Step(22),
            )
        )
        st.altair_chart(chart, width="stretch")
        return
    artifact = evaluation.get("png")
    if not artifact:
        st.info("No confusion matrix logged with this version's run.")
        return
    try:
        image = session.api().confusion_png(user.token, version)
    except ApiError as exc:
        st.warning(exc.message)
        return
    st.image(image, caption=f"Confusion matrix, test set ({artifact}; logged before interactive matrices)")


def show_version(user: UserSession, version: str, champion: str | None, lang: str) -> dict[str, Any]:
    """The chosen version: the gate's same-rows comparison, per-class scores, confusion matrix."""
    try:
        row = session.api().model_version(user.token, version)
        evaluation = session.api().model_evaluation(user.token, version)
    except ApiError as exc:
        session.fail(exc)
    evaluation["png"] = row.get("confusion_matrix")
    st.markdown(
        f"**Version {row['version']}** · decision: {row['tags'].get('promotion.decision', '–')} · "
        f"reasons: {row['tags'].get('promotion.reasons', '–')}"
    )
    comparison = head_to_head(evaluation.get("gate"), version, champion)
    show_head_to_head(comparison, version)
    show_compare_with_champion(user, version, champion)
    show_class_scores(class_scores(evaluation, lang), evaluation.get("test_rows"))
    show_confusion(user, version, evaluation, lang)
    return comparison


def show_card(user: UserSession, version: str) -> None:
    """The version's model card (read through the API), with its self-contained HTML to download."""
    with st.expander(f"Model card of version {version}", expanded=False):
        try:
            card = session.api().model_card(user.token, version)
        except ApiError as exc:
            if exc.status == 404:  # e.g. a version registered before model cards existed
                st.info(exc.detail or exc.message)
                return
            session.fail(exc)
        st.markdown(card)  # every value in it is escaped by the API's card writer
        try:
            page = session.api().model_card(user.token, version, "html")
        except ApiError as exc:
            st.warning(exc.message)
            return
        st.download_button(
            "Download the card (HTML)", page, file_name=f"model-card-v{version}.html", mime="text/html",
            key="card_download",
        )  # fmt: skip


def _admin_action(action: Callable[[], dict[str, Any]], rollback: bool = False) -> None:
    """Run a champion change through the API: it enforces the admin role, changes the registry, reloads."""
    try:
        out = action()
    except ApiError as exc:
        session.fail(exc)
    previous = out.get("previous") or "none"
    if rollback:
        message = f"Champion moved from version {out['previous']} back to version {out['champion']}."
    else:
        message = f"Version {out['champion']} is champion (was {previous})."
    session.flash(f"{message} The API now serves version {out['serving']}.", "success")
    st.rerun()


def confirm_change(user: UserSession, comparison: dict[str, Any], champion: dict[str, Any] | None) -> None:
    """The confirmation step: what will change, the gate's verdict, a reason; nothing moves before Confirm."""
    kind, target = st.session_state[PENDING_KEY]
    current = champion["version"] if champion else "none"
    if comparison.get("version") != target:  # a rollback's target is not the version on show
        try:
            gate = session.api().model_evaluation(user.token, target).get("gate")
        except ApiError as exc:
            session.fail(exc)
        comparison = head_to_head(gate, target, champion["version"] if champion else None)
    with st.container(border=True):
        st.markdown(f"**Confirm: make version {target} champion (now version {current})**")
        if kind == "rollback":
            st.markdown(f"Rolling back: version {current} gives the alias back to version {target}.")
        if not comparison["compared"]:
            st.warning(f"The gate never compared version {target}: {comparison['text']}")
        elif comparison["verdict"] != "passed":
            st.error(f"The promotion gate REJECTED version {target}. {comparison['text']}")
        else:
            st.info(comparison["text"])
        reason = st.text_input("Why (kept in the promotion history)", key="change_reason", max_chars=500)
        left, right = st.columns(2)
        if left.button("Confirm", type="primary", key="confirm_change"):
            st.session_state.pop(PENDING_KEY, None)
            if kind == "rollback":
                _admin_action(lambda: session.api().rollback(user.token, reason), rollback=True)
            else:
                _admin_action(lambda: session.api().promote(user.token, target, reason))
        if right.button("Cancel", key="cancel_change"):
            st.session_state.pop(PENDING_KEY, None)
            st.rerun()


def admin_actions(user: UserSession, selected: str, champion: dict[str, Any] | None) -> None:
    if not user.is_admin:
        st.caption("Promoting a version and rolling back are for admins.")
        return
    left, right = st.columns(2)
    is_champion = champion is not None and champion["version"] == selected
    if left.button(f"Make version {selected} champion…", disabled=is_champion, key="promote", type="primary"):
        st.session_state[PENDING_KEY] = ("promote", selected)
    previous = champion["tags"].get("previous_champion") if champion else None
    label = f"Roll back to version {previous}…" if previous else "Roll back (nothing to roll back to)"
    if right.button(label, disabled=not previous, key="rollback"):
        st.session_state[PENDING_KEY] = ("rollback", previous)


def show_history(user: UserSession) -> None:
    st.subheader("Promotion history")
    try:
        events = session.api().promotion_history(user.token, limit=50)["events"]
    except ApiError as exc:
        st.warning(exc.message)
        return
    if not events:
        st.caption("No champion change recorded yet (changes are recorded from this release on).")
        return
    st.caption("Every change of champion, newest first, as recorded by the API (gate, manual, rollback).")
    st.dataframe(history_frame(events), hide_index=True, width="stretch")


def main() -> None:
    user = session.require_login()
    lang = session.lang()
    st.title("Models")
    try:
        listing = session.api().model_versions(user.token, limit=200)
    except ApiError as exc:
        session.fail(exc)
    name = listing["model_name"]
    st.caption(f"Model `{name}` in the registry at {listing['registry']}")
    rows = listing["versions"]
    if not rows:
        st.info(
            f"No version of `{name}` is registered yet: train one with "
            "`rakuten-mlops pipeline run --data-dir DATA` (see `rakuten-mlops data sample`)."
        )
        st.stop()
    champion = champion_of(rows)
    show_champion(champion)
    st.subheader("Registered versions")
    if listing["total"] > len(rows):
        st.caption(f"The {len(rows)} newest of {listing['total']} versions.")
    st.caption(
        "Gold F1 of different versions may come from different gold sets (see their row counts): "
        "only the gate column compares two versions on the same gold rows."
    )
    st.dataframe(versions_table(rows), hide_index=True)
    versions = [r["version"] for r in rows]
    default = versions.index(champion["version"]) if champion else 0
    chosen = st.selectbox("Version", versions, index=default, key="models_version")
    pending = st.session_state.get(PENDING_KEY)
    if pending and pending[0] == "promote" and pending[1] != chosen:  # another version picked: dropped
        st.session_state.pop(PENDING_KEY, None)
    admin_actions(user, chosen, champion)
    comparison = show_version(user, chosen, champion["version"] if champion else None, lang)
    if user.is_admin and st.session_state.get(PENDING_KEY):
        confirm_change(user, comparison, champion)
    show_history(user)
    show_shadow(user, chosen, lang)
    show_card(user, chosen)


if __name__ == "__main__":
    main()
