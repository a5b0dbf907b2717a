"""Render item records into the text that the language-model encoder embeds.

Templates use ``str.format`` placeholders that name fields of the item table.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterable, Mapping, Set

import numpy as np

DEFAULT_ITEM_TEMPLATE = "{name}. Genres: {genres}. Type: {type}. Episodes: {episodes}."
MISSING_VALUE_TEXT = "unknown"
LIST_SEPARATOR = ", "
TEMPLATE_CONFIG_KEY = "encoder.template"


class TemplateFieldError(KeyError, ValueError):
    """Template placeholder that names no field of the item table.

    It subclasses both KeyError and ValueError so that callers can catch either.
    """

    def __str__(self) -> str:
        # KeyError.__str__ returns the repr of its argument, which would quote the message.
        return str(self.args[0]) if self.args else ""


def template_fields(template: str) -> list[str]:
    """Return the field names that the template's placeholders reference, in order and without repeats.

    Raises:
        ValueError: the template is malformed (unbalanced braces), or a placeholder is
            positional (``{}``, ``{0}``) or uses attribute or index access (``{a.b}``, ``{a[0]}``).
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise ValueError(
            f"Invalid item text template {template!r}: {error}. "
            f"Fix the `{TEMPLATE_CONFIG_KEY}` config key (write a literal brace as '{{{{' or '}}}}')."
        ) from error

    names: list[str] = []
    for _, field_name, _, _ in parsed:
        if field_name is None:
            continue
        if field_name == "" or field_name.isdigit():
            raise ValueError(
                f"Invalid item text template {template!r}: positional placeholder "
                f"'{{{field_name}}}' is not supported, so name a field, for example '{{name}}'. "
                f"Fix the `{TEMPLATE_CONFIG_KEY}` config key."
            )
        if "." in field_name or "[" in field_name:
            raise ValueError(
                f"Invalid item text template {template!r}: placeholder '{{{field_name}}}' uses "
                "attribute or index access, which is not supported. "
                f"Fix the `{TEMPLATE_CONFIG_KEY}` config key."
            )
        if field_name not in names:
            names.append(field_name)
    return names


def render_item_text(template: str, fields: Mapping[str, object]) -> str:
    """Render one item's text from its fields.

    List, tuple, set and 1-D array values are joined with ", ". None, NaN, empty strings
    and empty lists render as "unknown". The result has surrounding whitespace stripped.

    Raises:
        TemplateFieldError: a placeholder names a key that ``fields`` does not contain.
        ValueError: the template is malformed (see ``template_fields``).
    """
    names = template_fields(template)
    _check_fields_exist(template, names, set(fields))
    return _render(template, names, fields)


def render_texts(template: str, records: Iterable[Mapping[str, object]]) -> list[str]:
    """Render the text of each record, in input order.

    A field exists in the table when at least one record contains it. A record that
    lacks an existing field renders it as "unknown".

    Raises:
        TemplateFieldError: a placeholder names a field that no record contains.
        ValueError: the template is malformed (see ``template_fields``).
    """
    names = template_fields(template)
    records = list(records)
    if not records:
        return []

    available: set[str] = set()
    for record in records:
        available.update(record.keys())
    _check_fields_exist(template, names, available)

    return [_render(template, names, record) for record in records]


def _check_fields_exist(template: str, names: list[str], available: set[str]) -> None:
    unknown = [name for name in names if name not in available]
    if not unknown:
        return
    available_text = ", ".join(sorted(str(key) for key in available)) or "(none)"
    placeholders = ", ".join(f"'{{{name}}}'" for name in unknown)
    subject = f"placeholder {placeholders} names a field" if len(unknown) == 1 else (
        f"placeholders {placeholders} name fields"
    )
    raise TemplateFieldError(
        f"Item text template {subject} that the item table does not contain. "
        f"Available fields: {available_text}. Fix the `{TEMPLATE_CONFIG_KEY}` config key "
        f"(template: {template!r})."
    )


def _render(template: str, names: list[str], record: Mapping[str, object]) -> str:
    # Values are converted to text first, so a format spec such as '{name:>20}' applies to strings.
    values = {name: format_field_value(record.get(name)) for name in names}
    return template.format_map(values).strip()


def format_field_value(value: object) -> str:
    """Convert one field value to text: sequences joined with ", ", missing values as "unknown"."""
    if isinstance(value, np.ndarray):
        value = value.tolist() if value.ndim > 0 else value.item()

    if isinstance(value, (list, tuple, Set)):
        elements = list(value)
        if isinstance(value, Set):
            # Set order depends on string hash randomization, which would change the text
            # (and its cache key) between runs.
            elements = sorted(elements, key=str)
        parts = [format_field_value(element) for element in elements if not is_missing(element)]
        parts = [part for part in parts if part != MISSING_VALUE_TEXT]
        return LIST_SEPARATOR.join(parts) if parts else MISSING_VALUE_TEXT

    if is_missing(value):
        return MISSING_VALUE_TEXT

    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        # Integer columns with missing entries load as float (220 -> 220.0), so print them as integers.
        return str(int(value))

    text = str(value).strip()
    return text if text else MISSING_VALUE_TEXT


def is_missing(value: object) -> bool:
    """Return whether a scalar value counts as missing: None, NaN, NaT, pandas.NA or a blank string."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    if type(value).__name__ == "NAType":  # pandas.NA, whose comparisons return NA instead of a bool
        return True
    try:
        return bool(value != value)  # NaT and Decimal("NaN") are not equal to themselves
    except (TypeError, ValueError):
        return False
