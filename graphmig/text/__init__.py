"""Item text rendering and language-model text encoding with an on-disk feature cache."""

from graphmig.text.encoder import (
    DEFAULT_MODEL_NAME,
    TextEncoder,
    encode_with_cache,
    feature_cache_key,
    mean_pool,
    resolve_model_path,
)
from graphmig.text.templates import (
    DEFAULT_ITEM_TEMPLATE,
    TemplateFieldError,
    format_field_value,
    render_item_text,
    render_texts,
    template_fields,
)

__all__ = [
    "DEFAULT_ITEM_TEMPLATE",
    "DEFAULT_MODEL_NAME",
    "TemplateFieldError",
    "TextEncoder",
    "encode_with_cache",
    "feature_cache_key",
    "format_field_value",
    "mean_pool",
    "render_item_text",
    "render_texts",
    "resolve_model_path",
    "template_fields",
]
