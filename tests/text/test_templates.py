"""Tests for rendering item records into encoder input text."""

import math
from decimal import Decimal

import numpy as np
import pytest

from graphmig.text import (
    DEFAULT_ITEM_TEMPLATE,
    TemplateFieldError,
    render_item_text,
    render_texts,
    template_fields,
)

NARUTO = {
    "name": "Naruto",
    "genres": ["Action", "Comedy", "Martial Arts", "Shounen", "Super Power"],
    "type": "TV",
    "episodes": 220,
}


def test_render_default_template():
    text = render_item_text(DEFAULT_ITEM_TEMPLATE, NARUTO)
    assert text == "Naruto. Genres: Action, Comedy, Martial Arts, Shounen, Super Power. Type: TV. Episodes: 220."


@pytest.mark.parametrize(
    "genres",
    [("Drama", "Romance"), np.array(["Drama", "Romance"]), {"Romance", "Drama"}],
    ids=["tuple", "ndarray", "set-sorted"],
)
def test_render_sequence_joined(genres):
    assert render_item_text("{genres}", {"genres": genres}) == "Drama, Romance"


def test_render_list_skips_missing_elements():
    assert render_item_text("{genres}", {"genres": ["Drama", None, float("nan"), " ", "Romance"]}) == "Drama, Romance"


@pytest.mark.parametrize(
    "value",
    [None, float("nan"), np.float32("nan"), np.nan, Decimal("NaN"), "", "   ", [], [None], np.array([])],
    ids=["none", "nan", "np-float32-nan", "np-nan", "decimal-nan", "empty", "blank", "empty-list",
         "list-of-none", "empty-array"],
)
def test_render_missing_value_unknown(value):
    assert render_item_text("Episodes: {episodes}.", {"episodes": value}) == "Episodes: unknown."


def test_render_missing_in_default_template():
    fields = {"name": "Monster", "genres": None, "type": float("nan"), "episodes": None}
    text = render_item_text(DEFAULT_ITEM_TEMPLATE, fields)
    assert text == "Monster. Genres: unknown. Type: unknown. Episodes: unknown."


def test_render_integral_float_as_int():
    assert render_item_text("{episodes}", {"episodes": 220.0}) == "220"


def test_render_fractional_float_kept():
    assert render_item_text("{score}", {"score": 8.25}) == "8.25"


def test_render_numpy_integer():
    assert render_item_text("{episodes}", {"episodes": np.int64(26)}) == "26"


@pytest.mark.parametrize(
    "name",
    ["進撃の巨人", "Amélie Poulain", "Pokémon: Mewtwo Strikes Back", "카우보이 비밥", "Ōkami Kodomo"],
)
def test_render_unicode_kept(name):
    assert render_item_text("{name}.", {"name": name}) == f"{name}."


def test_render_html_characters_not_escaped():
    text = render_item_text("{name}. {synopsis}", {"name": "Tom & Jerry", "synopsis": "A cat <3 a mouse's \"chase\"."})
    assert text == "Tom & Jerry. A cat <3 a mouse's \"chase\"."


def test_render_strips_surrounding_whitespace():
    assert render_item_text("  {name}  \n", {"name": "  Naruto "}) == "Naruto"


def test_render_keeps_literal_braces():
    assert render_item_text("{{{name}}}", {"name": "Naruto"}) == "{Naruto}"


def test_render_unknown_placeholder_error_types():
    with pytest.raises(KeyError):
        render_item_text("{genre}", NARUTO)
    with pytest.raises(ValueError):
        render_item_text("{genre}", NARUTO)


def test_render_unknown_placeholder_message():
    with pytest.raises(TemplateFieldError) as caught:
        render_item_text("{name}. Genres: {genre}.", NARUTO)
    message = str(caught.value)
    assert "'{genre}'" in message
    assert "Available fields: episodes, genres, name, type." in message
    assert "`encoder.template` config key" in message


def test_render_positional_placeholder_rejected():
    with pytest.raises(ValueError, match="positional placeholder"):
        render_item_text("{} episodes", NARUTO)


def test_render_attribute_placeholder_rejected():
    with pytest.raises(ValueError, match="attribute or index access"):
        render_item_text("{name.upper}", NARUTO)


def test_render_unbalanced_brace_rejected():
    with pytest.raises(ValueError, match="encoder.template"):
        render_item_text("{name", NARUTO)


def test_template_fields_order_unique():
    assert template_fields("{name} {type} {name}") == ["name", "type"]


def test_render_texts_input_order():
    records = [{"name": "Naruto", "type": "TV"}, {"name": "Akira", "type": "Movie"}]
    assert render_texts("{name} ({type})", records) == ["Naruto (TV)", "Akira (Movie)"]


def test_render_texts_absent_key_unknown():
    records = [{"name": "Naruto", "episodes": 220}, {"name": "Akira"}]
    assert render_texts("{name}: {episodes}", records) == ["Naruto: 220", "Akira: unknown"]


def test_render_texts_field_in_no_record():
    records = ({"name": "Naruto"}, {"name": "Akira"})
    with pytest.raises(TemplateFieldError, match=r"'\{episodes\}'.*Available fields: name\."):
        render_texts("{name}: {episodes}", records)


def test_render_texts_accepts_generator():
    records = ({"name": name} for name in ["A", "B"])
    assert render_texts("{name}", records) == ["A", "B"]


def test_render_texts_empty():
    assert render_texts(DEFAULT_ITEM_TEMPLATE, []) == []


def test_render_nan_never_in_output():
    text = render_item_text(DEFAULT_ITEM_TEMPLATE, {"name": "X", "genres": [math.nan], "type": None, "episodes": math.nan})
    assert "nan" not in text.lower()
