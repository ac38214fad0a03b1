"""How a payout's money leaves (ADR 0023): one small interface, two gateways.

- `StripeConnect`: a Connect transfer to the guide's connected account, through the project's Stripe client
  wrapper (mall/payments/stripe_gateway.py, the only module that imports the SDK), with the payout's own
  idempotency key, so a repeated call (the sweep, a retried batch) answers the transfer made the first time.
- `Manual`: nothing leaves the process; the brand's finance team pays the exported bank-transfer CSV and an admin
  marks each payout paid with the bank's reference.

`records` is what the gateway says was paid, for the nightly reconciliation: payout id -> `Record`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session

from mall.guides.payout_models import Payout
from mall.payments.gateway import Transfer


@dataclass(frozen=True)
class TransferCall:
    """A transfer to make: everything the call needs, so nothing is read from the database during it."""

    payout_id: int
    amount: int
    currency: str
    destination: str
    key: str
    metadata: dict = field(default_factory=dict)

    def request(self) -> dict:
        return {"amount": self.amount, "currency": self.currency, "destination": self.destination,
                "idempotency_key": self.key, "metadata": self.metadata}  # fmt: skip


@dataclass(frozen=True)
class Record:
    """A payment the gateway holds for a payout: its reference, amount, and how much of it came back."""

    payout_id: int
    reference: str
    amount: int
    currency: str
    returned: int = 0


class PayoutGateway(Protocol):
    name: str
    remote: bool  # a provider behind a network: claim -> commit -> call -> record

    def send(self, call: TransferCall) -> Transfer: ...

    def records(self, session: Session, *, since: datetime, installation: str) -> dict[int, list[Record]]: ...


class StripeConnect:
    name = "stripe"
    remote = True

    def __init__(self, stripe):
        self.stripe = stripe  # a mall.payments.stripe_gateway.StripeGateway

    def send(self, call: TransferCall) -> Transfer:
        return self.stripe.transfer(**call.request())

    def records(self, session: Session, *, since: datetime, installation: str) -> dict[int, list[Record]]:
        found: dict[int, list[Record]] = {}
        for transfer in self.stripe.transfers(created_since=int(since.timestamp())):
            meta = transfer.metadata
            if meta.get("installation") != installation or not str(meta.get("payout_id", "")).isdigit():
                continue  # another installation's, or not a payout's
            record = Record(payout_id=int(meta["payout_id"]), reference=transfer.transfer_id, amount=transfer.amount,
                            currency=transfer.currency, returned=transfer.amount_reversed)  # fmt: skip
            found.setdefault(record.payout_id, []).append(record)
        return found


class Manual:
    name = "manual"
    remote = False

    def send(self, call: TransferCall) -> Transfer:
        raise NotImplementedError("a manual payout is paid by the brand's bank, then marked paid")

    def records(self, session: Session, *, since: datetime, installation: str) -> dict[int, list[Record]]:
        """The marked-paid records: each paid manual payout's bank reference."""
        rows = session.execute(sa.select(Payout.id, Payout.reference, Payout.amount, Payout.currency).where(
            Payout.gateway == "manual", Payout.state == "paid", Payout.requested_at >= since))  # fmt: skip
        return {pid: [Record(pid, ref, amount, currency)] for pid, ref, amount, currency in rows if ref}


def gateways_for(settings) -> dict[str, PayoutGateway | None]:
    """The payout gateways of these settings: Stripe only where a Stripe key is configured."""
    from mall.payments.factory import stripe_for

    stripe = stripe_for(settings)
    return {"manual": Manual(), "stripe": StripeConnect(stripe) if stripe is not None else None}
