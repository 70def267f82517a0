"""Keep the run's secrets out of what the model sees and what is stored.

A secret can reach a tool result in many ways the file tools cannot stop: ``exec`` running
``cat .env`` or ``env``, a config file holding a copy of a key, an MCP server echoing its token.
So the values themselves are redacted: every tool result passes through :meth:`Redactor.redact`
once, in the agent loop, before it becomes part of the conversation, a checkpoint or an event.

Which values (:func:`secret_values`): the run's environment (process env plus env files) entries
whose names look like secrets (:func:`is_secret_name`: ``*_API_KEY``, ``*_KEY``, ``*_TOKEN``,
``*SECRET*``, ``*PASSWORD*``, ``*PASSWD*``, ``*PASSPHRASE*``, ``*CREDENTIAL*``,
``AWS_ACCESS_KEY_ID``, ...), plus every variable an MCP skill of the config names in
``requiredEnv`` or in a ``${NAME}`` of its headers, whatever its name. Values shorter than
:data:`MIN_SECRET_LENGTH` characters are left alone: redacting ``true`` or ``8080`` everywhere
would mangle ordinary output and protect nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping

from runtime.config.schema import PerstackConfig
from runtime.schema.messages import TextPart
from runtime.skills.types import ToolOutcome

__all__ = [
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "Redactor",
    "is_secret_name",
    "secret_names",
    "secret_values",
]

MIN_SECRET_LENGTH = 8
"""Shorter values are never redacted."""

REDACTED = "***"
"""What a secret value is replaced with."""

# Words that make a variable a secret wherever they appear in its name.
_SECRET_WORDS = ("SECRET", "PASSWORD", "PASSWD", "PASSPHRASE", "CREDENTIAL", "API_KEY", "APIKEY")
# Words that do when they are a whole part of the name (split on "_"): TOKEN but not TOKENS,
# KEY but not KEYBOARD.
_SECRET_PARTS = frozenset({"TOKEN", "KEY", "PAT"})
_HEADER_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def is_secret_name(name: str) -> bool:
    """Whether an environment variable called ``name`` holds a secret, judged by its name.

    Examples: ``OPENAI_API_KEY``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_ACCESS_KEY_ID`` (an access
    key), ``GITHUB_TOKEN``, ``DB_PASSWORD`` are; ``MAX_TOKENS``, ``KEYBOARD``, ``PATH`` are not.
    """
    upper = name.upper()
    if any(word in upper for word in _SECRET_WORDS) or "ACCESS_KEY" in upper:
        return True
    return any(part in _SECRET_PARTS for part in upper.split("_"))


def secret_names(config: PerstackConfig) -> set[str]:
    """The variables the MCP skills of ``config`` ask for: ``requiredEnv`` and header ``${NAME}``.

    Every expert of the file counts, so the secrets of a delegate are known from the start.
    """
    names: set[str] = set()
    for expert in config.experts.values():
        for skill in (expert.skills or {}).values():
            names.update(getattr(skill, "required_env", None) or ())
            for value in (getattr(skill, "headers", None) or {}).values():
                names.update(_HEADER_VARIABLE.findall(value))
    return names


def secret_values(env: Mapping[str, str], names: Iterable[str] = ()) -> set[str]:
    """The values of ``env`` to redact: secret-looking names plus ``names``, long enough.

    Args:
        env: The run's environment (from :func:`runtime.config.env.load_env`).
        names: Variables to treat as secrets whatever they are called (:func:`secret_names`).
    """
    chosen = set(names)
    return {
        value
        for name, value in env.items()
        if (name in chosen or is_secret_name(name)) and len(value) >= MIN_SECRET_LENGTH
    }


class Redactor:
    """Replaces each of a fixed set of secret values with :data:`REDACTED`.

    Built once per run. A value is also matched as it appears inside a JSON string (quotes,
    backslashes and control characters escaped), since the base tools return JSON text.

    Args:
        values: The secrets; those shorter than :data:`MIN_SECRET_LENGTH` are ignored.
    """

    def __init__(self, values: Iterable[str] = ()) -> None:
        variants: set[str] = set()
        for value in values:
            if len(value) >= MIN_SECRET_LENGTH:
                variants.add(value)
                variants.add(json.dumps(value, ensure_ascii=False)[1:-1])
                variants.add(json.dumps(value)[1:-1])
        # Longest first, so a secret that contains another is replaced whole.
        self._values = tuple(sorted(variants, key=len, reverse=True))
        self._pattern = re.compile("|".join(map(re.escape, self._values))) if variants else None

    @classmethod
    def for_run(cls, env: Mapping[str, str], config: PerstackConfig | None = None) -> Redactor:
        """The redactor of a run with environment ``env`` and perstack.toml ``config``."""
        names = secret_names(config) if config is not None else set()
        return cls(secret_values(env, names))

    def __bool__(self) -> bool:
        return self._pattern is not None

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced; the same object when there is none in it.

        A text that ends with the first :data:`MIN_SECRET_LENGTH` or more characters of a
        secret has that end replaced too: a result cut at a size cap (MCP ``maxResultChars``,
        stderr chunks) may end inside a key.
        """
        if self._pattern is None:
            return text
        # A substring test per value runs at memory speed; the regex only runs on a hit.
        if len(self._values) > 16 or any(value in text for value in self._values):
            text = self._pattern.sub(REDACTED, text)
        return self._redact_cut_end(text)

    def _redact_cut_end(self, text: str) -> str:
        tail = text[-max(len(v) for v in self._values) :]
        for value in self._values:
            for length in range(len(value) - 1, MIN_SECRET_LENGTH - 1, -1):
                if tail.endswith(value[:length]):
                    return text[:-length] + REDACTED
        return text

    def redact_outcome(self, outcome: ToolOutcome) -> ToolOutcome:
        """``outcome`` with its text parts redacted (images and files are left as they are)."""
        if self._pattern is None:
            return outcome
        changed = False
        parts = list(outcome.contents)
        for index, part in enumerate(parts):
            if isinstance(part, TextPart):
                text = self.redact(part.text)
                if text is not part.text:
                    parts[index] = part.model_copy(update={"text": text})
                    changed = True
        return ToolOutcome(contents=parts, is_error=outcome.is_error) if changed else outcome
