"""The risk gate. It denies with a reason; it never raises for a denial.

The gate is pure: it judges a RiskSnapshot (read by the store inside the same transaction
that writes the reservation), so two cycles or two replicas cannot both spend the same dollar.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal

from .config import TradingConfig
from .models import ZERO, TradeSignal


class TradingState(str, enum.Enum):
    ACTIVE = "active"
    PAUSED = "paused"  # no new entries (signals or approvals); everything else runs
    HALTED = "halted"  # nothing but reconciliation


@dataclass(frozen=True)
class RiskSnapshot:
    state: TradingState
    bankroll: Decimal  # initial bankroll + realised P&L, for this mode (paper or live)
    reserved: Decimal = ZERO  # held by signals awaiting an outcome
    exposure: Decimal = ZERO  # cost + fees of open positions, and the worst case of live orders no signal covers
    open_positions: int = 0
    pending_signals: int = 0
    live_orders: int = 0  # markets where only a live order (resting, unknown) holds the desk's place
    markets_in_play: frozenset[str] = field(default_factory=frozenset)
    realized_today: Decimal = ZERO  # negative is a loss

    @property
    def free(self) -> Decimal:
        return self.bankroll - self.reserved - self.exposure


@dataclass(frozen=True)
class RiskDecision:
    allowed: bool
    code: str = "ok"
    reason: str = ""

    @classmethod
    def deny(cls, code: str, reason: str) -> "RiskDecision":
        return cls(False, code, reason)


ALLOW = RiskDecision(True)


def _money(value: Decimal) -> str:
    return f"${value.quantize(Decimal('0.01'))}"


class PositionManager:
    def __init__(self, trading: TradingConfig) -> None:
        self.trading = trading

    def check_state(self, snapshot: RiskSnapshot) -> RiskDecision:
        """Whether new entries (signals or approvals) are allowed at all right now."""
        if snapshot.state is TradingState.HALTED:
            return RiskDecision.deny("desk_halted", "the desk is HALTED: no trading until an authorized user resumes")
        if snapshot.state is TradingState.PAUSED:
            return RiskDecision.deny("desk_paused", "the desk is PAUSED: no new entries until /desk resume")
        return self.check_daily_loss(snapshot)

    def check_daily_loss(self, snapshot: RiskSnapshot) -> RiskDecision:
        """Today's realised loss against `daily_loss_limit_fraction` of the bankroll the day started with."""
        start_of_day = snapshot.bankroll - snapshot.realized_today
        limit = self.trading.daily_loss_limit_fraction * start_of_day
        if snapshot.realized_today < 0 and -snapshot.realized_today >= limit:
            return RiskDecision.deny("daily_loss_limit", f"today's realised loss {_money(-snapshot.realized_today)} "
                                                         f"reached the daily limit {_money(limit)}")
        return ALLOW

    def check_entry(self, snapshot: RiskSnapshot, signal: TradeSignal) -> RiskDecision:
        """May this signal reserve its capital?"""
        state = self.check_state(snapshot)
        if not state.allowed:
            return state
        # The stake (what Kelly sized, against the book) is held to the per-position cap; the bankroll and the
        # exposure limit are held against the worst case, every contract filling at the limit.
        stake, amount = signal.expected_outlay, signal.reserved
        if signal.market.key in snapshot.markets_in_play:
            return RiskDecision.deny("already_in_market", f"{signal.market.key} already has a pending signal, a live "
                                                          "order or an open position")
        in_play = snapshot.open_positions + snapshot.pending_signals + snapshot.live_orders
        if in_play >= self.trading.max_open_positions:
            return RiskDecision.deny("max_open_positions", f"{in_play} positions, live orders and pending signals "
                                                           f"already (limit {self.trading.max_open_positions})")
        cap = self.trading.max_position_fraction * snapshot.bankroll
        if stake > cap:
            return RiskDecision.deny("position_too_large", f"{_money(stake)} exceeds the per-position cap "
                                                           f"{_money(cap)}")
        if amount > snapshot.free:
            return RiskDecision.deny("insufficient_bankroll", f"needs {_money(amount)}, free bankroll is "
                                                              f"{_money(snapshot.free)}")
        ceiling = self.trading.max_exposure_fraction * snapshot.bankroll
        committed = snapshot.reserved + snapshot.exposure
        if committed + amount > ceiling:
            return RiskDecision.deny("exposure_limit", f"{_money(committed)} committed + {_money(amount)} would "
                                                       f"exceed the exposure limit {_money(ceiling)}")
        return ALLOW

    def check_approval(self, snapshot: RiskSnapshot) -> RiskDecision:
        """At Approve the capital is already reserved; only the desk's state can stop it."""
        return self.check_state(snapshot)
