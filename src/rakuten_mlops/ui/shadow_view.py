"""The challenger in shadow on the Models page: its comparison with the champion on the same live
listings, the live promotion rule, and (admins) putting a version in shadow and promoting it.

Read and changed through the API only (`/v1/monitoring/shadow`, `/v1/model/challenger`,
`/v1/model/promote-challenger`); the API checks the admin role and records every decision.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from rakuten_mlops.api_client import ApiError, UserSession
from rakuten_mlops.ui import session
from rakuten_mlops.ui.labels import category_with_code

NO_CHALLENGER = (
    "No challenger in shadow. Put a version there with `rakuten-mlops models challenge VERSION` "
    "(or the button below, admins): the API then scores it on live listings beside the champion, "
    "answering no one."
)


def comparison_frame(comparisons: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per (challenger, champion) pair: agreement, confidence, feedback, live F1 of both."""
    return pd.DataFrame(
        [
            {
                "challenger": c["challenger_version"],
                "champion": c["champion_version"],
                "shadow listings": c["predictions"],
                "agreement": c["agreement"],
                "confidence (challenger)": c["challenger_confidence"],
                "confidence (champion)": c["champion_confidence"],
                "with feedback": c["feedback"],
                "live wF1 (challenger)": c["challenger_f1"],
                "live wF1 (champion)": c["champion_f1"],
            }
            for c in comparisons
        ]
    )


def class_mix_frame(comparison: dict[str, Any], lang: str) -> pd.DataFrame:
    """The share of each predicted category, challenger and champion, on the same listings."""
    rows = [
        {
            "model": f"{role} v{comparison[f'{role}_version']}",
            "category": category_with_code(code, lang),
            "share": share,
        }
        for role in ("challenger", "champion")
        for code, share in comparison[f"{role}_class_mix"].items()
    ]
    return pd.DataFrame(rows, columns=["model", "category", "share"])


def _current(shadow: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (
            c
            for c in shadow["comparisons"]
            if c["challenger_version"] == shadow["challenger_version"]
            and c["champion_version"] == shadow["champion_version"]
        ),
        None,
    )


def _admin(user: UserSession, selected: str, shadow: dict[str, Any]) -> None:
    left, middle, right = st.columns(3)
    is_champion = selected == shadow.get("champion_version")
    if left.button(f"Put version {selected} in shadow", disabled=is_champion, key="challenge"):
        _act(lambda: session.api().challenge(user.token, selected), "challenge")
    has_challenger = bool(shadow.get("challenger_version"))
    if middle.button(
        "Promote the challenger (live rule)", disabled=not has_challenger, key="promote_challenger"
    ):
        _act(lambda: session.api().promote_challenger(user.token), "promote")
    if right.button("Stop shadow scoring", disabled=not has_challenger, key="clear_challenger"):
        _act(lambda: session.api().clear_challenger(user.token), "clear")


def _act(action: Any, kind: str) -> None:
    try:
        out = action()
    except ApiError as exc:
        session.fail(exc)
    if kind == "challenge":
        session.flash(
            f"Version {out['challenger']} is in shadow; the API scores version {out['scoring']}.", "success"
        )
    elif kind == "clear":
        session.flash(f"No challenger now (was version {out['previous']}).", "success")
    elif out["promote"]:
        session.flash(
            f"Version {out['version']} promoted from shadow: {'; '.join(out['reasons'])}. "
            f"The API now serves version {out['serving']}.",
            "success",
        )
    else:
        session.flash(f"Version {out['version']} stays in shadow: {'; '.join(out['reasons'])}.", "warning")
    st.rerun()


def show_shadow(user: UserSession, selected: str, lang: str) -> None:
    """The Models page section; admins only (the comparison describes every user's traffic)."""
    st.subheader("Challenger in shadow")
    if not user.is_admin:
        st.caption("The challenger's comparison with the champion is for admins.")
        return
    try:
        shadow = session.api().shadow(user.token)
    except ApiError as exc:
        session.fail(exc)
    serving = shadow["serving"]
    rule = shadow["rule"]
    if shadow.get("error"):
        st.warning(f"Shadow predictions cannot be read from the app database: {shadow['error']}")
    if shadow.get("challenger_version"):
        st.markdown(
            f"**Challenger: version {shadow['challenger_version']}** beside champion version "
            f"{shadow['champion_version']} · this API scores version {serving['loaded_version'] or 'none'} "
            f"on {serving['share']:.0%} of listings"
        )
    else:
        st.info(NO_CHALLENGER)
    if serving.get("last_error"):
        st.warning(f"Challenger problem: {serving['last_error']}")
    st.caption(
        f"Promotion rule: at least {rule['shadow_min_feedback']} shadow listings with feedback, and the "
        f"challenger's live weighted F1 on them not below the champion's minus {rule['shadow_f1_tolerance']}."
    )
    current = _current(shadow)
    if shadow["comparisons"]:
        st.dataframe(comparison_frame(shadow["comparisons"]), hide_index=True)
    if current is not None:
        mix = class_mix_frame(current, lang)
        chart = (
            alt.Chart(mix)
            .mark_bar()
            .encode(
                x=alt.X("share:Q", title="share of shadow listings"),
                y=alt.Y("category:N", title=None, sort="-x"),
                color=alt.Color("model:N", title=None),
                yOffset="model:N",
                tooltip=["model", "category", alt.Tooltip("share:Q", format=".1%")],
            )
            .properties(title="Class mix on the same listings", height=alt.Step(12))
        )
        st.altair_chart(chart, width="stretch")
    elif shadow.get("challenger_version"):
        st.info("No shadow prediction of the challenger yet: they appear once the API has served listings.")
    for decision in shadow["decisions"][:5]:
        verdict = "promoted" if decision.get("promote") else "kept in shadow"
        st.caption(
            f"{decision.get('recorded_at')}: version {decision.get('version')} {verdict} — "
            + "; ".join(decision.get("reasons", []))
        )
    _admin(user, selected, shadow)
