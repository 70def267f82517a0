"""What every real model client shares: the provider it calls and the facts of its model.

:class:`ResolvedModel` holds the :class:`~runtime.llm.providers.ProviderResolution` and answers
``model_name`` and ``context_window()`` from litellm's price table (read, never imported), so the
native clients and the litellm client report the same window and price the same tokens.
:class:`NativeModel` adds what the two native clients share: the endpoint, the request body's
model name and the run's connection pool.
"""

from __future__ import annotations

import httpx

from runtime.errors import ModelError, PerstackError
from runtime.llm.http import Endpoint, new_client
from runtime.llm.model_facts import ModelInfo
from runtime.llm.prices import model_info
from runtime.llm.providers import ProviderResolution
from runtime.llm.reasoning import budget_tokens

__all__ = ["NativeModel", "ResolvedModel"]


class ResolvedModel:
    """A model of a resolved provider.

    Args:
        resolution: The provider and model, from :func:`runtime.llm.providers.resolve_provider`.
    """

    def __init__(self, resolution: ProviderResolution) -> None:
        self._resolution = resolution
        self._info: ModelInfo | None = None
        self._info_known = False

    @property
    def model_name(self) -> str:
        """The model id as the user named it (e.g. ``gpt-4.1``)."""
        return self._resolution.model

    @property
    def resolution(self) -> ProviderResolution:
        """The provider resolution this model calls with."""
        return self._resolution

    def model_info(self) -> ModelInfo | None:
        """Price, window and reasoning support from litellm's table; None for an unknown model."""
        if not self._info_known:
            self._info_known = True
            self._info = model_info(self._resolution.litellm_model)
        return self._info

    def context_window(self) -> int | None:
        """The model's input window in tokens; None when unknown."""
        info = self.model_info()
        return info.max_input_tokens if info is not None else None

    def reasoning_tokens(self, budget: str | int) -> int:
        """The reasoning budget to ask for: 0 when it is off or the model does not reason.

        Reasoning options sent to a model without reasoning are a 400 on most providers, so
        only models the price table marks as reasoning get them, on every client.

        Raises:
            ModelError: ``budget`` is invalid (named ``ConfigError``).
        """
        try:
            tokens = budget_tokens(budget)
        except PerstackError as exc:
            raise ModelError(exc.message, name="ConfigError") from exc
        info = self.model_info()
        return tokens if info is not None and info.supports_reasoning else 0


class NativeModel(ResolvedModel):
    """A model called by one of our own HTTP clients.

    Args:
        resolution: The provider and model.
        endpoint: Where requests go, with their headers (see :mod:`runtime.llm.factory`).
        wire_model: The ``model`` field of the request body.
    """

    def __init__(self, resolution: ProviderResolution, endpoint: Endpoint, wire_model: str) -> None:
        super().__init__(resolution)
        self._endpoint = endpoint
        self._wire_model = wire_model
        self._client: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._endpoint.url!r}, {self._wire_model!r})"

    def client(self) -> httpx.AsyncClient:
        """The run's connection pool, made on first use."""
        if self._client is None:
            self._client = new_client(self._endpoint.url)
        return self._client

    async def aclose(self) -> None:
        """Close the connection pool (the run is over)."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aclose()
