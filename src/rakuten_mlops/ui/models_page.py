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
from rakuten_mlops.ui.registry_view import champion_of, per_class_f1, versions_frame
from rakuten_mlops.ui.shadow_view import show_shadow


def show_champion(champion: dict[str, Any] | None) -> None:
    if champion is None:
        st.warning("No version holds the `champion` alias: the API has nothing to serve yet.")
        return
    st.subheader(f"Champion: version {champion['version']}")
    m = champion["metrics"]
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "Gold weighted F1", f"{m['gold_system_weighted_f1']:.3f}" if "gold_system_weighted_f1" in m else "–"
    )
    c2.metric(
        "Test weighted F1", f"{m['test_system_weighted_f1']:.3f}" if "test_system_weighted_f1" in m else "–"
    )
    c3.metric("Modalities", champion["tags"].get("modalities", "–"))
    decision = champion["tags"].get("promotion.decision")
    if decision:
        st.caption(f"Decision: {decision}. Reasons: {champion['tags'].get('promotion.reasons', '–')}")


def show_version(user: UserSession, version: str, lang: str) -> None:
    try:
        row = session.api().model_version(user.token, version)
    except ApiError as exc:
        session.fail(exc)
    st.markdown(
        f"**Version {row['version']}** · decision: {row['tags'].get('promotion.decision', '–')} · "
        f"reasons: {row['tags'].get('promotion.reasons', '–')}"
    )
    left, right = st.columns(2)
    with left:
        f1 = per_class_f1(row, lang)
        if f1.empty:
            st.info("This version's run logged no per-class F1.")
        else:
            chart = (
                alt.Chart(f1)
                .mark_bar()
                .encode(
                    x=alt.X("f1:Q", scale=alt.Scale(domain=[0, 1]), title="F1 (test set)"),
                    y=alt.Y("category:N", sort="x", title=None, axis=LABELS),
                    tooltip=["category", alt.Tooltip("f1:Q", format=".3f")],
                )
                .properties(title="Per-class F1", height=alt.Step(20))
            )
            st.altair_chart(chart, width="stretch")
    with right:
        artifact = row.get("confusion_matrix")
        if not artifact:
            st.info("No confusion matrix logged with this version's run.")
            return
        try:
            image = session.api().confusion_png(user.token, version)
        except ApiError as exc:
            st.warning(exc.message)
            return
        st.image(image, caption=f"Confusion matrix, test set ({artifact})")


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


def admin_actions(user: UserSession, selected: str, champion: dict[str, Any] | None) -> None:
    if not user.is_admin:
        st.caption("Promoting a version and rolling back are for admins.")
        return
    left, right = st.columns(2)
    is_champion = champion is not None and champion["version"] == selected
    if left.button(f"Make version {selected} champion", disabled=is_champion, key="promote", type="primary"):
        _admin_action(lambda: session.api().promote(user.token, selected))
    previous = champion["tags"].get("previous_champion") if champion else None
    label = f"Roll back to version {previous}" if previous else "Roll back (nothing to roll back to)"
    if right.button(label, disabled=not previous, key="rollback"):
        _admin_action(lambda: session.api().rollback(user.token), rollback=True)


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
    st.dataframe(versions_frame(rows), hide_index=True)
    versions = [r["version"] for r in rows]
    default = versions.index(champion["version"]) if champion else 0
    chosen = st.selectbox("Version", versions, index=default, key="models_version")
    admin_actions(user, chosen, champion)
    show_version(user, chosen, lang)
    show_shadow(user, chosen, lang)
    show_card(user, chosen)


if __name__ == "__main__":
    main()
