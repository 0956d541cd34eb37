from engine.serve.story import STORY_RESULTS, stories, story_rows

TABLE = """train on train/, choose on val/, score test/ once; tf_efficientnet_lite0; machine: 2 CPU cores, device cpu
data             arm                      test  95% interval photos  seconds epochs  backbone
leaves           auto                    0.912   0.894-0.927    857      172      0  tf_efficientnet_lite0
leaves           scratch, auto's time    0.203   0.177-0.231    857      154      2  tf_efficientnet_lite0
leaves           scratch, long           0.327   0.296-0.359    857      426      6  tf_efficientnet_lite0
leaves           probe                   0.840   0.814-0.863    857       54      0  tf_efficientnet_lite0
only-probe       probe                   0.500   0.400-0.600    100       54      0  tf_efficientnet_lite0
"""


def test_the_story_quotes_the_measured_table_and_skips_a_dataset_without_every_arm(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text(TABLE)
    rows = story_rows(path)
    assert [r.arm for r in rows][:2] == ["auto", "scratch, auto's time"] and rows[0].interval == (0.894, 0.927)
    (story,) = stories(path)
    assert (story.scratch, story.probe, story.auto, story.photos) == ((0.203, 0.327), 0.84, 0.912, 857)
    assert story.machine == "2 CPU cores, device cpu"
    sentence = story.sentence()
    assert "20%–33%" in sentence and "84%" in sentence and "91%" in sentence and "857" in sentence


def test_without_the_table_there_is_no_claim(tmp_path):
    assert stories(tmp_path / "missing.txt") == [] and story_rows(tmp_path / "missing.txt") == []


def test_home_says_what_the_shipped_table_measured_and_no_other_number():
    from streamlit.testing.v1 import AppTest

    from engine.paths import REPO

    at = AppTest.from_file(str(REPO / "pages" / "home.py"), default_timeout=60).run()
    assert not at.exception
    text = " ".join(c.value for c in at.caption) + " ".join(m.value for m in at.markdown)
    assert "60%" not in text and "about 90%" not in text
    for story in stories(STORY_RESULTS):
        assert story.sentence() in text
