"""What the bot says per label: the file's display texts, else readable defaults."""

from __future__ import annotations

import pytest

from nothotdog.contract import MetaKey, ModelSpec, default_display


def test_defaults_read_well_and_keep_the_hotdog_words() -> None:
    assert default_display(("hot_dog", "not_hot_dog"), "hot_dog") == {
        "hot_dog": "🌭 Hotdog!", "not_hot_dog": "🚫 Not hotdog"}  # fmt: skip
    assert default_display(("cat", "not_cat"), "cat") == {"cat": "✅ Cat!", "not_cat": "🚫 Not cat"}
    assert default_display(("blue", "dark-green", "red"), "blue") == {
        "blue": "Blue", "dark-green": "Dark green", "red": "Red"}  # fmt: skip


def test_display_texts_travel_in_the_metadata() -> None:
    spec = ModelSpec(labels=("cat", "not_cat"), positive_label="cat",
                     display={"cat": "🐱 Cat!", "not_cat": "🙅 Not a cat"})  # fmt: skip
    meta = spec.to_metadata()
    back = ModelSpec.from_metadata(meta)
    assert back.display_text("cat") == "🐱 Cat!" and back.display == spec.display
    assert MetaKey.DISPLAY not in back.extra
    assert MetaKey.DISPLAY not in ModelSpec().to_metadata()  # nothing chosen, nothing written
    assert ModelSpec.from_metadata(ModelSpec().to_metadata()).display_text("hot_dog") == (
        "🌭 Hotdog!")  # fmt: skip


def test_display_texts_for_unknown_labels_are_refused() -> None:
    meta = ModelSpec().to_metadata() | {MetaKey.DISPLAY: '{"cat": "Cat"}'}
    with pytest.raises(ValueError, match="display texts"):
        ModelSpec.from_metadata(meta)
