"""Model spending, pure: dollars from token usage, and a worst case to check budgets before a call."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .config import ModelPrice

MILLION = Decimal(1_000_000)
BATCH_DISCOUNT = Decimal("0.5")


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    web_searches: int = 0

    def __add__(self, other: "Usage") -> "Usage":
        return Usage(self.input_tokens + other.input_tokens, self.output_tokens + other.output_tokens,
                     self.cache_write_tokens + other.cache_write_tokens,
                     self.cache_read_tokens + other.cache_read_tokens, self.web_searches + other.web_searches)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens + self.cache_write_tokens + self.cache_read_tokens


def cost(usage: Usage, price: ModelPrice, *, search_per_1000: Decimal, batch: bool = False) -> Decimal:
    tokens = (usage.input_tokens * price.input + usage.output_tokens * price.output
              + usage.cache_write_tokens * price.cache_write + usage.cache_read_tokens * price.cache_read) / MILLION
    if batch:
        tokens *= BATCH_DISCOUNT
    return tokens + usage.web_searches * search_per_1000 / 1000


# Characters per token where a bound must hold (budgets, the prompt's size): English runs near four, so three
# overcounts on purpose.
PESSIMISTIC_CHARS_PER_TOKEN = 3


def estimated_tokens(text: str) -> int:
    """About four characters a token for English; rounded up so budgets err on the safe side."""
    return -(-len(text) // 4)


def pessimistic_tokens(chars: int) -> int:
    """An upper estimate of the tokens in `chars` characters of English text."""
    return -(-chars // PESSIMISTIC_CHARS_PER_TOKEN)


def worst_case(prompt_chars: int, max_output_tokens: int, price: ModelPrice, *, searches: int,
               search_per_1000: Decimal) -> Decimal:
    """An upper bound of one call: no cache hit, every output token used, every search made.

    Search results come back as input tokens; allow a generous 4,000 tokens per search.
    """
    input_tokens = pessimistic_tokens(prompt_chars) + searches * 4000
    usage = Usage(input_tokens=input_tokens, output_tokens=max_output_tokens, web_searches=searches)
    return cost(usage, price, search_per_1000=search_per_1000) + price.cache_write * input_tokens / MILLION
