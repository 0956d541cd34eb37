from engine.text import literal


def test_a_name_is_one_code_span_whatever_it_holds():
    assert literal("**bold**") == "`**bold**`" and literal("a`b") == "``a`b``" and literal("`x") == "`` `x ``"
    hostile = "leaf\n\n![pixel](http://tracker.example/p.png) [link](http://x)\r\x00"
    shown = literal(hostile)
    assert "\n" not in shown and "\r" not in shown and "\x00" not in shown
    assert shown == "`leaf\\n\\n![pixel](http://tracker.example/p.png) [link](http://x)\\r\\x00`"
    assert literal("Tomato — late blight é") == "`Tomato — late blight é`"  # printable text stays as it is
