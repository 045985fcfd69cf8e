"""triogate-transform-rules: the rules shared by triogate's transform plugins.

A library, not a plugin: JSON field rules (``FieldRules``) and header rules
(``HeaderRules``) with ``triogate.template`` values, dotted field paths, JSON body
helpers, and the config tables the transform plugins share (``RemoveRules``, ...). Used by
request-transform, response-transform and aggregate.
"""

from .fields import NOTHING, FieldPath, FieldRules, compile_fields, get_field, pop_field, set_field, split_path
from .headers import MANAGED_HEADERS, HeaderRules, check_header_name, compile_headers, is_token
from .jsonbody import dumps, is_json, loads
from .tables import AppendRules, RemoveRules, RenameRules, SetRules, has_rules

__version__ = "0.1.0"
__all__ = [
    "MANAGED_HEADERS", "NOTHING", "AppendRules", "FieldPath", "FieldRules", "HeaderRules", "RemoveRules",
    "RenameRules", "SetRules", "check_header_name", "compile_fields", "compile_headers", "dumps", "get_field",
    "has_rules", "is_json", "is_token", "loads", "pop_field", "set_field", "split_path",
]
