"""``make_provider(model)``: the provider for a model name, with its credentials checked now.

``AgentRunner.load(path, model="provider/name")`` calls this, so a missing API key is a clear
``ConfigurationError`` at load time naming the environment variable, not a failure mid-run.
Keys and bases come from litellm's own environment variables (``OPENAI_API_KEY``,
``OPENAI_API_BASE``, ``ANTHROPIC_API_KEY``, ...), as litellm users expect. Models on the native
transport (``openai/...``) are checked without importing litellm (its import takes seconds).
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import ConfigurationError
from .litellm_provider import LiteLLMProvider, import_litellm, is_native

# Providers served locally that need neither key nor base (litellm knows their default port).
_LOCAL_PROVIDERS = {"ollama", "ollama_chat", "lm_studio", "llamafile"}


def make_provider(
    model: str,
    *,
    api_key: str | None = None,
    api_base: str | None = None,
    check_credentials: bool = True,
    **kwargs: Any,
) -> LiteLLMProvider:
    """A ``LiteLLMProvider`` for ``model`` (litellm's ``provider/name`` form).

    Raises ``ConfigurationError`` if the model name is empty or, when ``check_credentials``,
    if the environment lacks what litellm needs for it (the message names the variables).
    Other keyword arguments go to ``LiteLLMProvider``.
    """
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError(f"model must be a non-empty string like 'openai/gpt-4o-mini', got {model!r}")
    if check_credentials:
        native = is_native(model, kwargs.get("transport", "auto"))
        missing = missing_environment(model, api_key=api_key, api_base=api_base, native=native)
        if missing:
            raise ConfigurationError(_missing_message(model, missing))
    return LiteLLMProvider(model, api_base=api_base, api_key=api_key, **kwargs)


def missing_environment(
    model: str, *, api_key: str | None = None, api_base: str | None = None, native: bool = False
) -> list[str]:
    """The environment variables still needed for ``model`` (empty when ready).

    ``native`` (an OpenAI-compatible endpoint called without litellm) needs only a key.
    Otherwise uses ``litellm.validate_environment`` (offline); local providers need nothing.
    """
    if native:
        return [] if api_key or os.environ.get("OPENAI_API_KEY") else ["OPENAI_API_KEY"]
    litellm = import_litellm()
    try:
        _, provider, _, _ = litellm.get_llm_provider(model=model)
    except Exception as exc:
        raise ConfigurationError(
            f"model {model!r}: litellm does not know this provider ({exc}); "
            "use the 'provider/name' form, e.g. 'openai/gpt-4o-mini'"
        ) from None
    if provider in _LOCAL_PROVIDERS:
        return []
    result = litellm.validate_environment(model=model, api_key=api_key, api_base=api_base)
    return [name for name in result.get("missing_keys", []) if not os.environ.get(name)]


def _missing_message(model: str, missing: list[str]) -> str:
    keys = [m for m in missing if m.endswith("_API_KEY")]
    if len(keys) == len(missing) and len(keys) > 1:
        need = "one of " + ", ".join(keys)
    else:
        need = ", ".join(missing)
    return (
        f"model {model!r} needs credentials: set {need} in the environment "
        "(or pass api_key= / api_base=)"
    )
