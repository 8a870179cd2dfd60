"""Home: every lesson's name is a link to its page, through the router as a student opens it."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]


def test_every_lesson_name_is_a_link_to_an_existing_page():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    assert not at.exception, [e.value for e in at.exception]
    links = at.get("page_link")
    pages = {link.proto.page for link in links}
    labels = [link.proto.label for link in links]
    assert "**Kernels**" in labels and "**Train a CNN**" in labels
    # A link for every lesson file in pages/ but home, each a page the router knows.
    lessons = {p.stem for p in (ROOT / "pages").glob("*.py")} - {"home"}
    # Streamlit resolved each link to a page of st.navigation: its URL path and script hash.
    assert pages == lessons, pages
    assert all(link.proto.page_script_hash for link in links)
