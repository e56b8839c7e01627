"""Models page: registry versions, metrics, the champion, promotion decisions, per-class F1, confusion matrix.

Admins can promote a version or roll back: the API checks the role, moves the alias and loads
the new champion at once (the UI itself never writes to the registry).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import altair as alt
import streamlit as st

from rakuten_mlops.api_client import ApiError, UserSession
from rakuten_mlops.config import Settings
from rakuten_mlops.lifecycle.registry import VersionRow
from rakuten_mlops.ui import session
from rakuten_mlops.ui.charts import LABELS
from rakuten_mlops.ui.registry_view import (
    champion_of,
    confusion_image,
    per_class_f1,
    registry_versions,
    versions_frame,
)


def redact(uri: str) -> str:
    """A URI without its password, for display."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def show_champion(champion: VersionRow | None) -> None:
    if champion is None:
        st.warning("No version holds the `champion` alias: the API has nothing to serve yet.")
        return
    st.subheader(f"Champion: version {champion.version}")
    m = champion.metrics
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "Gold weighted F1", f"{m['gold_system_weighted_f1']:.3f}" if "gold_system_weighted_f1" in m else "–"
    )
    c2.metric(
        "Test weighted F1", f"{m['test_system_weighted_f1']:.3f}" if "test_system_weighted_f1" in m else "–"
    )
    c3.metric("Modalities", champion.tags.get("modalities", "–"))
    decision = champion.tags.get("promotion.decision")
    if decision:
        st.caption(f"Decision: {decision}. Reasons: {champion.tags.get('promotion.reasons', '–')}")


def show_version(s: Settings, row: VersionRow, lang: str) -> None:
    st.markdown(
        f"**Version {row.version}** · decision: {row.tags.get('promotion.decision', '–')} · "
        f"reasons: {row.tags.get('promotion.reasons', '–')}"
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
        image = confusion_image(s, row.run_id)
        if image is None:
            st.info("No confusion matrix logged with this version's run.")
        else:
            st.image(image[0], caption=f"Confusion matrix, test set ({image[1]})")


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


def admin_actions(user: UserSession, s: Settings, selected: VersionRow, champion: VersionRow | None) -> None:
    if not user.is_admin:
        st.caption("Promoting a version and rolling back are for admins.")
        return
    left, right = st.columns(2)
    is_champion = champion is not None and champion.version == selected.version
    if left.button(
        f"Make version {selected.version} champion", disabled=is_champion, key="promote", type="primary"
    ):
        _admin_action(lambda: session.api().promote(user.token, selected.version))
    previous = champion.tags.get("previous_champion") if champion else None
    label = f"Roll back to version {previous}" if previous else "Roll back (nothing to roll back to)"
    if right.button(label, disabled=not previous, key="rollback"):
        _admin_action(lambda: session.api().rollback(user.token), rollback=True)


def main() -> None:
    user = session.require_login()
    lang = session.lang()
    s = session.settings()
    st.title("Models")
    st.caption(f"Model `{s.model_name}` in the registry at {redact(s.registry_uri)}")
    try:
        rows = registry_versions(s)
    except Exception as exc:  # any backend failure (no database, server down) is shown, not raised
        st.error(f"The model registry cannot be read ({exc.__class__.__name__}: {exc}).")
        st.stop()
    if not rows:
        st.info(
            f"No version of `{s.model_name}` is registered yet: train one with "
            "`rakuten-mlops pipeline run --data-dir DATA` (see `rakuten-mlops data sample`)."
        )
        st.stop()
    champion = champion_of(rows)
    show_champion(champion)
    st.subheader("Registered versions")
    st.dataframe(versions_frame(rows), hide_index=True)
    versions = [r.version for r in rows]
    default = versions.index(champion.version) if champion else 0
    chosen = st.selectbox("Version", versions, index=default, key="models_version")
    selected = rows[versions.index(chosen)]
    admin_actions(user, s, selected, champion)
    show_version(s, selected, lang)


if __name__ == "__main__":
    main()
