"""Lines in, records and problems out. Never raises on garbage.

Modules: ``rules`` (declarative rule/column machinery and converters), ``formats`` (one rule
table per log format), ``engine`` (streaming chunks, format detection, the builder),
``failures`` (fatal signatures in the log tail), ``jsonl`` (AutoModel ``training.jsonl``),
``model`` (records), ``progress`` (public entry points: ``parse_lines``, ``parse_text``,
``parse_file``), ``summary`` (the ``parse-log`` JSON), ``memory`` (nvidia-smi CSV).
"""
