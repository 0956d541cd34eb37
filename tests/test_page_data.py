"""AppTest of the Data page."""

from pagetest import slow_fake_fit, fresh_caches, page, use_runner  # noqa: F401


def test_data_page_sample_and_bad_dataset(bad_corpus, tmp_path):
    at = page("data.py").run()
    assert not at.exception and at.metric[0].value == "15"
    at = page("data.py")
    at.session_state["dataset"] = str(tmp_path / "nope")
    at.run()
    assert not at.exception and "does not exist" in at.error[0].value
    at = page("data.py")
    at.session_state["dataset"] = str(bad_corpus)
    at.run()
    assert not at.exception and any("skipped" in w.value for w in at.warning)


def test_multichannel_arrays_set_the_channel_count_for_the_other_pages(tiny_folder, tmp_path):
    import numpy as np

    for cls in ("a", "b"):
        (tmp_path / "ms" / cls).mkdir(parents=True)
        for i in range(3):
            np.save(tmp_path / "ms" / cls / f"{i}.npy", np.full((32, 32, 6), 40 * i + (cls == "b") * 9, np.uint8))
    at = page("data.py")
    at.session_state["dataset"] = str(tmp_path / "ms")
    at.run()
    assert not at.exception and at.number_input[0].value == 6 and at.session_state["in_chans"] == 6
    assert any("6-channel" in w.value for w in at.warning)
    assert len(at.get("image")[0].proto.imgs) == 2  # the training arrays of the first class are shown as pictures
