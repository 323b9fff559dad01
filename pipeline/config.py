"""Settings: config.json, then `ODDSDESK_<SECTION>__<KEY>` environment overrides, then secrets.

Every section is frozen and forbids unknown keys, so a typo is an error rather than a
silently ignored setting. `load_settings` raises ConfigError with one line naming the key
path, where the value came from and what is allowed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError

ENV_PREFIX = "ODDSDESK_"
CONFIG_PATH_ENV = "ODDSDESK_CONFIG"
DEFAULT_CONFIG_PATH = "config.json"



class Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)


class ExitConfig(Section):
    """When the desk proposes selling what it holds (README, Exits). Each rule is off while null; a person can
    always close a position on demand."""

    review: bool = True  # every cycle prices each open position against its bids and re-estimates it
    # Propose an exit once selling at the best bid (after its fee) returns less than (1 - this) of what the
    # position cost, fees included: 0.5 sells when half the stake is lost.
    stop_loss_fraction: Decimal | None = Field(default=None, gt=0, lt=1)
    # Propose an exit once the market closes within this many hours (out before the resolution's risk).
    hours_before_close: Decimal | None = Field(default=None, gt=0)


class TradingConfig(Section):
    dry_run: bool = True
    initial_bankroll: Decimal = Field(default=Decimal(1000), gt=0)
    min_edge: Decimal = Field(default=Decimal("0.08"), ge=0, lt=1)
    kelly_multiplier: Decimal = Field(default=Decimal("0.25"), gt=0, le=1)
    max_position_fraction: Decimal = Field(default=Decimal("0.05"), gt=0, le=1)
    max_exposure_fraction: Decimal = Field(default=Decimal("0.5"), gt=0, le=1)
    max_open_positions: int = Field(default=10, ge=1)
    daily_loss_limit_fraction: Decimal = Field(default=Decimal("0.10"), gt=0, le=1)
    time_in_force: Literal["immediate_or_cancel", "fill_or_kill", "good_till_canceled"] = "immediate_or_cancel"
    # Live approvals only once the analyst's record shows the blend beating the market (README, Track record).
    require_record: bool = False
    exit: ExitConfig = ExitConfig()


def _is_zero(value: Any) -> bool:
    """0, 0.0, "0.000": any spelling of zero (not None, and not something that is no number at all)."""
    if value is None or isinstance(value, bool):
        return False
    try:
        return Decimal(str(value)) == 0
    except InvalidOperation:
        return False


class FeesConfig(Section):
    """Fees come from the venues (Kalshi's series schedules, Polymarket's per-market rates from the CLOB); these
    keys override them. Left empty, the desk trades at the venues' own fees."""

    # Kalshi series ticker -> taker rate (0.07 is the general schedule), replacing the exchange's for that series.
    kalshi_series_rates: dict[str, Decimal] = Field(default_factory=dict)
    polymarket_taker_rate: Decimal | None = Field(default=None, ge=0, le=1)  # one rate for every market instead
    cache_minutes: int = Field(default=30, ge=0, le=24 * 60)  # how long a venue's fee schedule is reused

    @model_validator(mode="before")
    @classmethod
    def _retired_keys(cls, data: Any) -> Any:
        """Refuse what an older config.json carried, whose meaning changed: fees now come from the venues, and
        these keys override them."""
        if not isinstance(data, dict):
            return data
        if "kalshi_taker_rate" in data:
            raise ValueError("fees.kalshi_taker_rate was removed: Kalshi's fees now come from each series' schedule "
                             "on the exchange. Also check fees.kalshi_series_rates and fees.polymarket_taker_rate: "
                             "they now override the venues' own fees (leave them out to use the venues')")
        if _is_zero(data.get("polymarket_taker_rate")):
            raise ValueError("fees.polymarket_taker_rate 0 (the old default) would now price every Polymarket "
                             "market as fee-free; remove the key to use each market's rate from the CLOB, or set "
                             "the rate you mean")
        return data

    @field_validator("kalshi_series_rates")
    @classmethod
    def _rates_in_range(cls, rates: dict[str, Decimal]) -> dict[str, Decimal]:
        for series, rate in rates.items():
            if not Decimal(0) <= rate <= 1:
                raise ValueError(f"rate for series {series!r} must be between 0 and 1")
        return rates


VenueName = Literal["kalshi", "polymarket"]


class ScanConfig(Section):
    venues: tuple[VenueName, ...] = ("kalshi", "polymarket")
    min_volume: Decimal = Field(default=Decimal(1000), ge=0)
    min_liquidity: Decimal = Field(default=Decimal(500), ge=0)
    min_price: Decimal = Field(default=Decimal("0.03"), gt=0, lt=1)
    max_price: Decimal = Field(default=Decimal("0.97"), gt=0, lt=1)
    min_hours_to_close: Decimal = Field(default=Decimal(1), ge=0)
    max_days_to_close: Decimal = Field(default=Decimal(90), gt=0)
    max_spread: Decimal = Field(default=Decimal("0.10"), gt=0, le=1)
    max_markets_to_analyze: int = Field(default=40, ge=0)

    @field_validator("venues")
    @classmethod
    def _venues_unique(cls, venues: tuple[str, ...]) -> tuple[str, ...]:
        if not venues:
            raise ValueError("list at least one venue: kalshi, polymarket")
        if len(set(venues)) != len(venues):
            raise ValueError("each venue may be listed once")
        return venues

    @model_validator(mode="after")
    def _price_band(self) -> "ScanConfig":
        if self.min_price >= self.max_price:
            raise ValueError("scan.min_price must be below scan.max_price")
        return self


class KalshiConfig(Section):
    # Basic tier: about 20 reads/s and 10 writes/s; Advanced 30/30. Stay a little under.
    reads_per_second: Decimal = Field(default=Decimal(18), gt=0)
    writes_per_second: Decimal = Field(default=Decimal(9), gt=0)
    include_multivariate: bool = False  # multivariate (combo) collections are skipped unless set
    orderbook_depth: int = Field(default=20, ge=1, le=100)
    # Counts in 0.01 steps, as the API's fixed-point counts allow; false sends whole contracts only.
    fractional_contracts: bool = True
    timeout_seconds: Decimal = Field(default=Decimal(10), gt=0)


class PolymarketConfig(Section):
    # Published limits per 10 s: Gamma /markets 300, CLOB /book 1500; stay a little under.
    gamma_requests_per_second: Decimal = Field(default=Decimal(25), gt=0)
    clob_requests_per_second: Decimal = Field(default=Decimal(120), gt=0)
    page_size: int = Field(default=100, ge=1, le=100)
    timeout_seconds: Decimal = Field(default=Decimal(10), gt=0)


class ModelPrice(Section):
    """List prices in dollars per million tokens."""

    input: Decimal = Field(ge=0)
    output: Decimal = Field(ge=0)
    cache_write: Decimal = Field(ge=0)  # 5-minute cache writes: 1.25 x input
    cache_read: Decimal = Field(ge=0)  # 0.1 x input


def _price(input_: str, output: str) -> ModelPrice:
    i = Decimal(input_)
    return ModelPrice(input=i, output=Decimal(output), cache_write=i * Decimal("1.25"), cache_read=i / 10)


class AnalysisConfig(Section):
    model: str = Field(default="claude-sonnet-5-5", min_length=1)
    max_concurrency: int = Field(default=8, ge=1, le=64)
    show_market_price: bool = False
    # The market's share of the blended fair value; "auto": the share that minimised the blend's Brier score over
    # the desk's own track record (pipeline/record.py, bounded), 0.5 until enough estimates have resolved.
    market_weight: Annotated[Decimal, Field(ge=0, le=1)] | Literal["auto"] = Decimal("0.5")
    cache_ttl_minutes: int = Field(default=360, ge=0)
    reanalyze_price_move: Decimal = Field(default=Decimal("0.03"), ge=0, le=1)
    budget_usd_per_cycle: Decimal = Field(default=Decimal("2.0"), ge=0)
    budget_usd_per_day: Decimal = Field(default=Decimal("10.0"), ge=0)
    web_search: bool = False
    web_search_max_uses: int = Field(default=3, ge=1, le=20)
    web_search_usd_per_1000: Decimal = Field(default=Decimal(10), ge=0)
    max_output_tokens: int = Field(default=1024, ge=128, le=16000)
    # The market's message (title, rules, dates), counted at 3 characters a token as the budget counts; longer
    # text is cut, rules first, and the model is told. Far below any context window, and a bound on each call's cost.
    max_prompt_tokens: int = Field(default=4000, ge=1000, le=100_000)
    max_retries: int = Field(default=3, ge=0, le=10)  # the desk's, not the SDK's, so each attempt is ledgered
    timeout_seconds: Decimal = Field(default=Decimal(60), gt=0)  # one model call
    deadline_seconds: Decimal = Field(default=Decimal(300), gt=0)  # all the analysis of one cycle
    batch_scheduled_cycles: bool = False  # Message Batches for scheduled cycles: half price, slower
    # Per model: the last day its training data may cover. `oddsdesk backtest` asks only about markets that closed
    # after it (an earlier market's answer may be memory); without an entry for the model it refuses to run.
    knowledge_cutoff: dict[str, date] = Field(default_factory=dict)
    batch_poll_seconds: Decimal = Field(default=Decimal(20), gt=0)
    prices: dict[str, ModelPrice] = Field(default_factory=lambda: {
        # Anthropic's list prices (platform.claude.com model pages, checked 2026-12-02). Sonnet 5.5 is the
        # current Sonnet; Sonnet 5 stays priced so a desk pinned to it keeps its budget.
        "claude-sonnet-5-5": _price("2", "10"),
        "claude-sonnet-5": _price("2", "10"),
        "claude-opus-5": _price("5", "25"),
        "claude-haiku-4-5": _price("1", "5"),
    })

    @model_validator(mode="after")
    def _model_is_priced(self) -> "AnalysisConfig":
        if self.model not in self.prices:
            raise ValueError(f"analysis.prices has no entry for model {self.model!r}; add its dollars per million "
                             "tokens (input, output, cache_write, cache_read) so spending can be budgeted")
        return self


def _is_user_id(value: str) -> bool:
    return value[:1] in ("U", "W") and value[1:].isalnum() and value.isupper() and len(value) >= 3


def _is_group_id(value: str) -> bool:
    return value[:1] == "S" and value[1:].isalnum() and value.isupper() and len(value) >= 3


class ApprovalConfig(Section):
    authorized_users: tuple[str, ...] = ()
    authorized_usergroups: tuple[str, ...] = ()
    expiry_minutes: int = Field(default=30, ge=1, le=24 * 60)
    max_slippage: Decimal = Field(default=Decimal("0.02"), ge=0, lt=1)

    @field_validator("authorized_users")
    @classmethod
    def _user_ids(cls, users: tuple[str, ...]) -> tuple[str, ...]:
        for user in users:
            if not _is_user_id(user):
                raise ValueError(f"{user!r} is not a Slack user id (like U012AB3CD); names are not accepted")
        return users

    @field_validator("authorized_usergroups")
    @classmethod
    def _group_ids(cls, groups: tuple[str, ...]) -> tuple[str, ...]:
        for group in groups:
            if not _is_group_id(group):
                raise ValueError(f"{group!r} is not a Slack user group id (like S0614TZR7)")
        return groups


class AccessConfig(Section):
    """Roles below the approvers, deny by default: Slack user ids (U…/W…) and user group ids (S…) in one list.
    Approvers may do everything operators may, and operators everything viewers may."""

    operators: tuple[str, ...] = ()  # may run /scan, /desk pause and /desk halt
    viewers: tuple[str, ...] = ()  # may see /desk status, positions, balance and App Home

    @field_validator("operators", "viewers")
    @classmethod
    def _ids(cls, entries: tuple[str, ...]) -> tuple[str, ...]:
        for entry in entries:
            if not (_is_user_id(entry) or _is_group_id(entry)):
                raise ValueError(f"{entry!r} is neither a Slack user id (like U012AB3CD) nor a user group id (like "
                                 "S0614TZR7); names are not accepted")
        return entries


class SlackConfig(Section):
    # The desk's one channel: cycles post here, and /scan is accepted only here. An id (C…/G…) is exact; a
    # name is matched against the channel name Slack sends with each command.
    channel: str = Field(default="#trading-desk", min_length=1)


class ScheduleConfig(Section):
    interval_minutes: int = Field(default=0, ge=0)  # 0 = only on /scan
    reconcile_seconds: int = Field(default=180, ge=1)  # `oddsdesk run` reconciles on start, then this often


class RecordConfig(Section):
    min_scored: int = Field(default=50, ge=2)  # resolved estimates before trading.require_record can pass


class StorageConfig(Section):
    path: str = Field(default="oddsdesk.db", min_length=1)


class Environment(BaseSettings):
    """Secrets and service base URLs, read only from the environment."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", case_sensitive=True)

    SLACK_BOT_TOKEN: SecretStr | None = None
    SLACK_SIGNING_SECRET: SecretStr | None = None
    SLACK_APP_TOKEN: SecretStr | None = None
    ANTHROPIC_API_KEY: SecretStr | None = None
    KALSHI_API_KEY_ID: SecretStr | None = None
    KALSHI_PRIVATE_KEY_PATH: str | None = None
    KALSHI_PRIVATE_KEY: SecretStr | None = None
    POLYMARKET_PRIVATE_KEY: SecretStr | None = None
    POLYMARKET_FUNDER: str | None = None
    POLYMARKET_SIGNATURE_TYPE: int | None = Field(default=None, ge=0, le=3)  # 0 EOA, 1 proxy, 2 safe, 3 deposit wallet
    POLYMARKET_API_KEY: SecretStr | None = None
    POLYMARKET_API_SECRET: SecretStr | None = None
    POLYMARKET_API_PASSPHRASE: SecretStr | None = None

    SLACK_API_URL: str = "https://slack.com/api/"
    ANTHROPIC_BASE_URL: str | None = None
    KALSHI_API_URL: str = "https://external-api.kalshi.com/trade-api/v2"
    POLYMARKET_GAMMA_URL: str = "https://gamma-api.polymarket.com"
    POLYMARKET_CLOB_URL: str = "https://clob.polymarket.com"
    POLYMARKET_DATA_URL: str = "https://data-api.polymarket.com"

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings,
                                   file_secret_settings):  # type: ignore[no-untyped-def]
        # load_settings passes the environment explicitly, so tests can hand in their own.
        return (init_settings,)

    def secret_values(self) -> list[str]:
        """Every secret that is set, for scrubbing text before it leaves the desk."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value():
                values.append(value.get_secret_value())
        return values


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    trading: TradingConfig = TradingConfig()
    fees: FeesConfig = FeesConfig()
    scan: ScanConfig = ScanConfig()
    kalshi: KalshiConfig = KalshiConfig()
    polymarket: PolymarketConfig = PolymarketConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    approval: ApprovalConfig = ApprovalConfig()
    access: AccessConfig = AccessConfig()
    slack: SlackConfig = SlackConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    record: RecordConfig = RecordConfig()
    storage: StorageConfig = StorageConfig()
    env: Environment = Field(default_factory=Environment)

    def redacted(self) -> dict[str, Any]:
        """The effective configuration as JSON-able data, every secret replaced."""
        data = self.model_dump(mode="json", exclude={"env"})
        env: dict[str, Any] = {}
        for name in Environment.model_fields:
            value = getattr(self.env, name)
            if name in SECRET_ENV_NAMES:
                env[name] = "set (redacted)" if value else "not set"
            else:
                env[name] = value
        data["env"] = env
        return data


# Shown only as set / not set. The key path is not itself secret but says where the key lives.
SECRET_ENV_NAMES = frozenset(
    name for name, field in Environment.model_fields.items() if "SecretStr" in str(field.annotation)
) | {"KALSHI_PRIVATE_KEY_PATH"}

SECTIONS: dict[str, type[Section]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Settings.model_fields.items() if name != "env"
}


def _parse_env_value(raw: str) -> Any:
    """JSON when it parses (numbers, booleans, lists), else the plain string."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def env_overrides(environ: Mapping[str, str]) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], str]]:
    """Collect ODDSDESK_<SECTION>__<KEY> variables; unknown names are errors, not ignored."""
    overrides: dict[str, dict[str, Any]] = {}
    origin: dict[tuple[str, str], str] = {}
    for name, raw in sorted(environ.items()):
        if not name.startswith(ENV_PREFIX) or name == CONFIG_PATH_ENV:
            continue
        parts = name[len(ENV_PREFIX):].lower().split("__")
        if len(parts) != 2 or parts[0] not in SECTIONS:
            raise ConfigError(f"config error: {name}: not a setting; use ODDSDESK_<SECTION>__<KEY> with a section "
                              f"from {', '.join(SECTIONS)}")
        section, key = parts
        if key not in SECTIONS[section].model_fields:
            raise ConfigError(f"config error: {name}: {section} has no key {key!r}; keys are "
                              f"{', '.join(SECTIONS[section].model_fields)}")
        overrides.setdefault(section, {})[key] = _parse_env_value(raw)
        origin[(section, key)] = name
    return overrides, origin


def _describe(error: ValidationError, origin: dict[tuple[str, str], str], source: str) -> str:
    first = error.errors()[0]
    loc = tuple(str(p) for p in first["loc"])
    path = ".".join(loc) or "(top level)"
    if len(loc) >= 2:
        where = origin.get(loc[:2], source)
    else:  # a whole-section check: name every override that fed it
        names = [name for (section, _), name in sorted(origin.items()) if loc and section == loc[0]]
        where = ", ".join([source, *names]) if names else source
    message = first["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    if first["type"] == "extra_forbidden":
        section = SECTIONS.get(loc[0]) if len(loc) == 2 else None
        known = ", ".join(section.model_fields) if section else ", ".join(SECTIONS)
        message = f"unknown key; allowed: {known}"
    elif first["type"] == "literal_error":
        message = message.replace("Input should be", "allowed:")
    got = first.get("input")
    shown = "" if first["type"] in ("extra_forbidden", "missing") or isinstance(got, dict) else f" (got {got!r})"
    more = len(error.errors()) - 1
    tail = f" [+{more} more]" if more else ""
    return f"config error: {path}: {message}{shown} [from {where}]{tail}"


def load_settings(path: str | os.PathLike[str] | None = None,
                  environ: Mapping[str, str] | None = None) -> Settings:
    environ = os.environ if environ is None else environ
    config_path = Path(path or environ.get(CONFIG_PATH_ENV) or DEFAULT_CONFIG_PATH)
    data: dict[str, Any] = {}
    if config_path.exists():
        try:
            data = json.loads(config_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"config error: {config_path}: not valid JSON (line {e.lineno}, column {e.colno}: "
                              f"{e.msg})") from e
        if not isinstance(data, dict):
            raise ConfigError(f"config error: {config_path}: the top level must be an object of sections")
    elif path is not None or CONFIG_PATH_ENV in environ:
        raise ConfigError(f"config error: {config_path}: file not found")

    overrides, origin = env_overrides(environ)
    for section, values in overrides.items():
        current = data.get(section, {})
        if not isinstance(current, dict):
            raise ConfigError(f"config error: {section}: must be an object [from {config_path}]")
        data[section] = {**current, **values}

    try:
        env = Environment(**{k: v for k, v in environ.items() if k in Environment.model_fields})
    except ValidationError as e:
        first = e.errors()[0]
        name = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"config error: {name}: {first['msg']} [from environment]") from e
    try:
        return Settings(**data, env=env)
    except ValidationError as e:
        raise ConfigError(_describe(e, origin, str(config_path))) from e
