from streamlit.testing.v1 import AppTest

from engine.paths import REPO


def test_landing_page_renders_catalogue():
    at = AppTest.from_file(str(REPO / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert "TransferLab" in at.title[0].value
    names = at.dataframe[0].value["backbone"].tolist()
    assert "tf_efficientnet_lite0" in names
