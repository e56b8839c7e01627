"""Entry script of the Streamlit app (`rakuten-mlops ui`): sidebar, language, navigation between pages."""

from __future__ import annotations

import streamlit as st

from rakuten_mlops.ui import session
from rakuten_mlops.ui.labels import LANGUAGES

PAGES = (
    ("predict_page.py", "Predict", ":material/label:"),
    ("batch_page.py", "Batch", ":material/table_view:"),
    ("models_page.py", "Models", ":material/model_training:"),
    ("monitoring_page.py", "Monitoring", ":material/monitoring:"),
    ("review_page.py", "Review", ":material/rate_review:"),
    ("data_page.py", "Data", ":material/dataset:"),
)


def sidebar() -> None:
    """Language choice, who is logged in, and which model the API serves."""
    with st.sidebar:
        st.markdown("### Rakuten product classifier")
        st.radio(
            "Category names",
            list(LANGUAGES),
            format_func=LANGUAGES.__getitem__,
            horizontal=True,
            key=session.LANG_KEY,
        )
        user = session.current_user()
        if user is None:
            st.caption(f"Not logged in · API {session.api_url()}")
            return
        role = "admin" if user.is_admin else "predictor"
        st.caption(f"Logged in as **{user.username}** ({role}) · API {session.api_url()}")
        info = session.served_model(user)
        if info is None:
            st.caption("Served model: unknown (the API does not answer)")
        elif info.get("version"):
            st.caption(f"Served model: {info['name']} version **{info['version']}**")
        else:
            st.caption(f"Served model: none loaded yet ({info.get('last_error') or 'no champion'})")
        if st.button("Log out", key="logout"):
            session.logout()
            st.rerun()


def main() -> None:
    st.set_page_config(page_title="Rakuten product classifier", page_icon=":material/label:", layout="wide")
    st.session_state.setdefault(session.LANG_KEY, "fr")
    pages = [
        st.Page(path, title=title, icon=icon, url_path=path.removesuffix("_page.py"), default=(i == 0))
        for i, (path, title, icon) in enumerate(PAGES)
    ]
    navigation = st.navigation(pages)
    sidebar()
    session.sync_cookie()
    navigation.run()


if __name__ == "__main__":
    main()
