"""AppTest of the Data page."""
import time

import ui.state
from engine.config import TrainConfig
from engine.store import RunStore
from pagetest import SlowFakeTrainer, fresh_caches, page, use_runner  # noqa: F401


def test_data_page_sample_and_bad_dataset(bad_corpus, tmp_path):
    at = page("1_Data.py").run()
    assert not at.exception and at.metric[0].value == "15"
    at = page("1_Data.py")
    at.session_state["dataset"] = str(tmp_path / "nope")
    at.run()
    assert not at.exception and "does not exist" in at.error[0].value
    at = page("1_Data.py")
    at.session_state["dataset"] = str(bad_corpus)
    at.run()
    assert not at.exception and any("skipped" in w.value for w in at.warning)
