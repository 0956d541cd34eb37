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


def test_a_folder_of_target_photos_gets_the_domain_gap_report(tiny_folder, tmp_path, monkeypatch):
    import time

    from PIL import Image, ImageOps

    target = tmp_path / "field"
    target.mkdir()
    for i, f in enumerate(sorted(tiny_folder.rglob("*.jpg"))):
        ImageOps.invert(Image.open(f).convert("RGB")).save(target / f"t{i}.jpg")
    monkeypatch.setenv("TRANSFERLAB_DATA_ROOT", str(tmp_path))
    at = page("data.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    at.text_input(key="target_folder").set_value(str(target)).run()
    at.button(key="measure_gap").click().run()
    deadline = time.time() + 90
    while not any("target photos" in i.value for i in at.info) and time.time() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception
    assert any("differ" in i.value or "look like" in i.value for i in at.info), [i.value for i in at.info]
    assert at.session_state["target"] == str(target)
    at.text_input(key="target_folder").set_value(str(tmp_path.parent)).run()  # outside the data root
    at.button(key="measure_gap").click().run()
    assert any("outside the data root" in e.value for e in at.error)


def test_check_my_photos_lists_likely_label_errors_and_stores_a_decision(tiny_folder, tmp_path, monkeypatch):
    import shutil
    import time

    from engine.data.dataset import load_dataset
    from engine.data.decisions import read_decisions

    classes = sorted(p.name for p in tiny_folder.iterdir())
    wrong = sorted((tiny_folder / classes[0]).iterdir())[0]
    shutil.move(wrong, tiny_folder / classes[1] / "mislabelled.jpg")  # a photo of class 0 filed under class 1
    at = page("data.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    at.button(key="check_photos").click().run()
    deadline = time.time() + 90
    while not any("may carry a wrong label" in i.value for i in at.info) and time.time() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception and any("may carry a wrong label" in i.value for i in at.info)
    assert at.get("plotly_chart"), "no embedding map"
    boxes = [s for s in at.selectbox if s.key and s.key.startswith("decide|")]
    assert boxes, "no photo to decide on"
    boxes[0].set_value("exclude").run()
    at.button(key="save_decisions").click().run()
    assert not at.exception and any("decision(s) stored" in s.value for s in at.success)
    ds = load_dataset(tiny_folder)
    assert [d.action for d in read_decisions(ds)] == ["exclude"]


def test_a_decisions_file_edited_by_hand_is_one_line_on_the_page(tiny_folder, monkeypatch, tmp_path):
    from engine.data.dataset import load_dataset
    from engine.data.decisions import decisions_file

    monkeypatch.setenv("TRANSFERLAB_HOME", str(tmp_path / "home"))
    ds = load_dataset(tiny_folder)
    path = decisions_file(ds.fingerprint())
    path.parent.mkdir(parents=True, exist_ok=True)
    for text in ("path,action,new_label\nnowhere.jpg,exclude,\n", f"{ds.items[0].path},exclude,\n", "a\x00b\n"):
        path.write_text(text)
        at = page("data.py")
        at.session_state["dataset"] = str(tiny_folder)
        at.run()
        assert not at.exception and any(str(path) in e.value for e in at.error), [e.value for e in at.error]


def test_a_refused_folder_name_never_becomes_the_dataset_nor_enters_the_url(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_DATA_ROOT", str(tmp_path))
    at = page("data.py").run()
    before = at.session_state["dataset"]
    at.radio(key="source").set_value("Folder on this server").run()
    for name in (str(tmp_path / ("x" * 5_000)), str(tmp_path / "missing"), "a\x00b"):
        at.text_input(key="folder").input(name).run()
        at.button(key="open_folder").click().run()
        assert not at.exception and at.error, name
        assert at.session_state["dataset"] == before and at.query_params.get("dataset") in (None, [before], before)
        at = page("data.py")
        at.session_state["source"] = "Folder on this server"
        at.run()
        assert not at.error, [e.value for e in at.error]  # the refusal does not come back on the next run


def test_a_relative_folder_name_opens_under_the_data_root_the_label_names(tiny_folder, monkeypatch):
    monkeypatch.setenv("TRANSFERLAB_DATA_ROOT", str(tiny_folder.parent))
    at = page("data.py").run()
    at.radio(key="source").set_value("Folder on this server").run()
    at.text_input(key="folder").input(tiny_folder.name).run()
    at.button(key="open_folder").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert at.session_state["dataset"] == str(tiny_folder.resolve())


def test_what_to_label_next_ranks_a_pool_and_stores_one_click_answers(tiny_folder, tmp_path, monkeypatch):
    import shutil
    import time

    from conftest import SAMPLE

    from engine.data.dataset import load_dataset
    from engine.data.decisions import read_decisions

    pool = tmp_path / "pool"
    pool.mkdir()
    for f in sorted((SAMPLE / "val").rglob("*.jpg"))[:6]:
        shutil.copy(f, pool / f"{f.parent.name}-{f.name}")
    monkeypatch.setenv("TRANSFERLAB_DATA_ROOT", str(tmp_path))
    at = page("data.py")
    at.session_state["dataset"] = str(tiny_folder)
    at.run()
    at.text_input(key=f"pool|{tiny_folder}").set_value("pool").run()  # relative: under the data root
    at.number_input(key="suggest_n").set_value(3).run()
    at.button(key="rank_pool").click().run()
    deadline = time.time() + 120
    while not any("pool photo(s) ranked" in i.value for i in at.info) and time.time() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception and any("6 pool photo(s) ranked" in i.value for i in at.info), [e.value for e in at.error]
    labels = [b for b in at.button if b.key.startswith("label|") and not b.key.endswith("|skip")]
    skips = [b for b in at.button if b.key.endswith("|skip")]
    assert len(skips) == 3 and len(labels) == 6
    first, second = labels[0].key.split("|")[1], skips[1].key.split("|")[1]
    labels[0].click().run()
    next(b for b in at.button if b.key == skips[1].key).click().run()
    decided = {d.path: d for d in read_decisions(load_dataset(tiny_folder))}
    assert decided[first].action == "label" and decided[first].new_label == labels[0].label
    assert decided[second].action == "skip" and not list(tiny_folder.rglob("*.csv"))
    assert any("1 labelled and 1 skipped of these 3" in c.value for c in at.caption), [c.value for c in at.caption]
    from engine.plan.config import TrainConfig
    from engine.plan.make import load_data

    planned = load_data(TrainConfig.create(data=str(tiny_folder), data_root=str(tmp_path)))
    assert [it.split for it in planned.items if it.path == first] == ["train"]  # the next plan trains on the answer
    assert any("1 labelled from your pool" in n for n in planned.notes)


def test_a_model_trained_on_these_photos_says_what_it_expects_on_the_target_photos(
    monkeypatch, tmp_path, finished_store
):
    import json
    import time

    from photos import val_folder

    from engine import model_card_markdown

    run = finished_store.list()[0]
    classes = json.loads((run.path / "run_info.json").read_text())["classes"]
    field = val_folder(tmp_path / "field", classes)
    monkeypatch.setenv("TRANSFERLAB_DATA_ROOT", str(tmp_path))
    use_runner(monkeypatch, finished_store)
    at = page("data.py")
    at.session_state["dataset"] = run.config["data"]["path"]
    at.run()
    assert not at.exception and any("Measure the domain gap with a folder" in c.value for c in at.caption)
    at.session_state["target"] = str(field)  # as Measure the domain gap remembers it
    at.run()
    assert at.selectbox(key="estimate_run").options == [run.id]
    at.button(key="estimate_target").click().run()
    deadline = time.time() + 90
    while not any(i.value.startswith("Expected accuracy on these") for i in at.info) and time.time() < deadline:
        time.sleep(1)
        at.run()
    assert not at.exception and not at.error
    said = next(i.value for i in at.info if i.value.startswith("Expected accuracy on these"))
    assert f"these {5 * len(classes)} photos" in said
    card = model_card_markdown(run)
    assert "**Expected on `field`** (15 photos" in card and str(tmp_path) not in card  # the card names no server path
