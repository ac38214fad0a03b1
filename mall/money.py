"""Money is an integer of minor units (cents/分) plus an ISO 4217 currency code."""

from __future__ import annotations

from dataclasses import dataclass

CURRENCY_EXPONENT = {"CNY": 2, "USD": 2, "EUR": 2, "HKD": 2, "JPY": 0}


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self):
        if not isinstance(self.amount, int) or isinstance(self.amount, bool):
            raise TypeError("Money.amount must be an int of minor units")
        if self.currency not in CURRENCY_EXPONENT:
            raise ValueError(f"unsupported currency {self.currency!r}")

    def _same(self, other: Money) -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot mix {self.currency} and {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def as_dict(self) -> dict:
        return {"amount": self.amount, "currency": self.currency}


def allocate(total: int, weights: list[int]) -> list[int]:
    """Split `total` over `weights` by largest remainder, so the parts always sum to `total`.

    Ties go to the earlier line, which keeps the split deterministic.
    """
    if total < 0:
        raise ValueError("allocate() takes a non-negative total")
    if any(w < 0 for w in weights):
        raise ValueError("allocate() takes non-negative weights")  # else a share could be negative
    weight_sum = sum(weights)
    if weight_sum == 0:
        if total:  # no lines, or only zero weights: the total would silently vanish
            raise ValueError("cannot allocate a positive total over zero weights")
        return [0] * len(weights)
    shares = [total * w // weight_sum for w in weights]
    remainders = [(total * w % weight_sum, -i) for i, w in enumerate(weights)]
    for _, neg_i in sorted(remainders, reverse=True)[: total - sum(shares)]:
        shares[-neg_i] += 1
    return shares
