"""Regenerate pipeline/sample/: the SAMPLE snapshot used by the offline demo and the tests.

    .venv/bin/python scripts/make_sample_snapshot.py

SAMPLE DATA: every market, price and estimate below is invented in the venues' real 2026
wire formats (see /work/shared/contracts/README.md); none of it is a live quote. Output is
deterministic (fixed tables, a seeded Random for book depth), so re-running changes nothing.

Each row says what it is for: "pass" rows clear the default scan filters, the others are
deliberate rejects, one per filter reason on each venue. Estimates are the model's raw YES
probability (it never sees the price); a handful are far enough from the market to leave a
net edge >= 0.08 after blending fair = 0.5 * model + 0.5 * mid and paying the taker fee.
The script prints that table and fails if the intended verdicts do not come out.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

D = Decimal
CAPTURED_AT = datetime(2026, 11, 20, 15, 0, tzinfo=timezone.utc)
OUT = Path(__file__).resolve().parent.parent / "pipeline" / "sample"
LABEL = "SAMPLE DATA - recorded-format fixtures for the offline demo, not live quotes"

# (ticker, title or None, yes_sub_title, close_time, structure, bid, ask, bid_size, ask_size, last,
#  volume, status, rules_primary, purpose, estimate (probability, confidence, reasoning, factors) or None)
# A title of None exercises the fallback: `title` is deprecated in the 2026 API.
KALSHI = [
    ("KXFEDDECISION-26DEC-H0", "Will the Fed hold rates steady at its December 2026 meeting?", "Hold",
     "2026-12-09T18:55:00Z", "linear_cent", "0.62", "0.64", 2400, 1900, "0.63", 184230, "active",
     "If the FOMC leaves the federal funds target range unchanged at the meeting concluding December 9, 2026, "
     "then the market resolves to Yes.", "pass",
     (0.70, 0.65, "Recent Fed communication leans toward patience after two cuts earlier in the year, "
      "but a soft payrolls print could still tip the committee.", ["FOMC minutes", "core PCE trend",
                                                                    "November payrolls"])),
    ("KXFEDDECISION-26DEC-C25", "Will the Fed cut rates by 25bps at its December 2026 meeting?", "Cut 25bps",
     "2026-12-09T18:55:00Z", "linear_cent", "0.33", "0.35", 1800, 2100, "0.34", 121880, "active",
     "If the FOMC lowers the upper bound of the federal funds target range by exactly 0.25 percentage points "
     "at the meeting concluding December 9, 2026, then the market resolves to Yes.", "pass",
     (0.27, 0.6, "A cut needs labour-market weakness that the data have not yet shown clearly.",
      ["unemployment rate", "Fed speakers", "inflation expectations"])),
    ("KXFEDDECISION-26DEC-H25", "Will the Fed hike rates by 25bps at its December 2026 meeting?", "Hike 25bps",
     "2026-12-09T18:55:00Z", "deci_cent", "0.0080", "0.0120", 42000, 36000, "0.0100", 56310, "active",
     "If the FOMC raises the upper bound of the federal funds target range by exactly 0.25 percentage points "
     "at the meeting concluding December 9, 2026, then the market resolves to Yes.", "price_low", None),
    ("KXFEDDECISION-27JAN-H0", "Will the Fed hold rates steady at its January 2027 meeting?", "Hold",
     "2027-01-27T18:55:00Z", "linear_cent", "0.55", "0.58", 900, 1100, "0.56", 40210, "active",
     "If the FOMC leaves the federal funds target range unchanged at the meeting concluding January 27, 2027, "
     "then the market resolves to Yes.", "pass",
     (0.52, 0.45, "Two meetings out, the path depends on December's decision and the holiday-season data.",
      ["December FOMC outcome", "CPI prints", "new voting members"])),
    ("KXCPI-26NOV-T0.3", "Will CPI rise more than 0.3% in November 2026?", "Above 0.3%",
     "2026-12-10T13:25:00Z", "linear_cent", "0.44", "0.46", 1500, 1300, "0.45", 38902, "active",
     "If the seasonally adjusted month-over-month change in CPI-U for November 2026, as first reported by the "
     "BLS, is above 0.3%, then the market resolves to Yes.", "pass",
     (0.18, 0.7, "Gasoline prices fell through November and shelter inflation keeps cooling, so a monthly "
      "print above 0.3% would need an unusual core surprise.", ["gasoline prices", "shelter disinflation",
                                                                 "Cleveland Fed nowcast"])),
    ("KXCPIYOY-26NOV-T2.8", "Will CPI inflation be above 2.8% for the year to November 2026?", "Above 2.8%",
     "2026-12-10T13:25:00Z", "linear_cent", "0.47", "0.50", 800, 950, "0.48", 22760, "active",
     "If the year-over-year change in CPI-U for November 2026, as first reported by the BLS, is above 2.8%, "
     "then the market resolves to Yes.", "pass",
     (0.45, 0.5, "Base effects from last November roughly offset the softer monthly trend.",
      ["base effects", "energy prices"])),
    ("KXCPIYOY-26NOV-T1.5", "Will CPI inflation be above 1.5% for the year to November 2026?", "Above 1.5%",
     "2026-12-10T13:25:00Z", "deci_cent", "0.9800", "0.9900", 5200, 4100, "0.9850", 15340, "active",
     "If the year-over-year change in CPI-U for November 2026, as first reported by the BLS, is above 1.5%, "
     "then the market resolves to Yes.", "price_high", None),
    ("KXPAYROLLS-26NOV-T50000", "Will the US add more than 50,000 jobs in November 2026?", "Above 50,000",
     "2026-12-04T13:25:00Z", "linear_cent", "0.61", "0.64", 700, 650, "0.62", 19880, "active",
     "If nonfarm payrolls for November 2026, as first reported by the BLS, rise by more than 50,000, then the "
     "market resolves to Yes.", "pass",
     (0.66, 0.55, "Hiring has slowed but weekly claims remain low, consistent with modest positive payrolls.",
      ["initial claims", "ADP report", "strike effects"])),
    ("KXGDP-26Q4-T2.0", "Will real GDP grow more than 2.0% in Q4 2026?", "Above 2.0%",
     "2027-01-28T13:25:00Z", "linear_cent", "0.48", "0.52", 600, 700, "0.50", 8740, "active",
     "If the BEA advance estimate of annualised real GDP growth for Q4 2026 is above 2.0%, then the market "
     "resolves to Yes.", "pass",
     (0.50, 0.4, "Nowcasts sit close to the threshold with a wide error band this early in the quarter.",
      ["GDPNow", "consumer spending", "net exports"])),
    ("INX-26DEC31-T7000", "Will the S&P 500 close above 7,000 on December 31, 2026?", "Above 7,000",
     "2026-12-31T21:00:00Z", "deci_cent", "0.4230", "0.4270", 1800, 1650, "0.4250", 96410, "active",
     "If the S&P 500 index closing value on December 31, 2026 is above 7000.00, then the market resolves to "
     "Yes.", "pass",
     (0.66, 0.6, "The index sits a little above the strike with six weeks left and December has a positive "
      "seasonal drift, so finishing above it is more likely than not.", ["distance to strike",
                                                                          "implied volatility", "seasonality"])),
    ("INX-26DEC31-B7125", "Will the S&P 500 close between 7,100 and 7,149.99 on December 31, 2026?",
     "7,100 to 7,149.99", "2026-12-31T21:00:00Z", "deci_cent", "0.0840", "0.0890", 6400, 5800, "0.0860",
     31220, "active",
     "If the S&P 500 index closing value on December 31, 2026 is between 7100.00 and 7149.99 inclusive, then "
     "the market resolves to Yes.", "pass",
     (0.07, 0.5, "A 50-point bucket six weeks out carries a single-digit probability under normal volatility.",
      ["bucket width", "implied volatility"])),
    ("NASDAQ100-26DEC31-T25000", "Will the Nasdaq-100 close above 25,000 on December 31, 2026?",
     "Above 25,000", "2026-12-31T21:00:00Z", "deci_cent", "0.5120", "0.5180", 1200, 1100, "0.5150", 44380,
     "active",
     "If the Nasdaq-100 index closing value on December 31, 2026 is above 25000.00, then the market resolves "
     "to Yes.", "pass",
     (0.55, 0.5, "The index trades near the strike; a coin flip with a slight upward drift.",
      ["distance to strike", "megacap earnings"])),
    ("KXBTC-26DEC31-T100000", "Will Bitcoin be above $100,000 on December 31, 2026?", "Above $100,000",
     "2026-12-31T22:00:00Z", "linear_cent", "0.57", "0.59", 2200, 2000, "0.58", 152300, "active",
     "If the CF Benchmarks Bitcoin Real Time Index is above 100,000.00 at 5:00 PM ET on December 31, 2026, "
     "then the market resolves to Yes.", "pass",
     (0.40, 0.55, "Bitcoin has drifted below six figures with falling ETF inflows, and realised volatility "
      "makes a year-end recovery uncertain.", ["ETF flows", "realised volatility", "macro liquidity"])),
    ("KXBTC15M-26NOV201045-T96000", "Will Bitcoin be above $96,000 at 10:45 AM ET on November 20, 2026?",
     "Above $96,000", "2026-11-20T15:45:00Z", "linear_cent", "0.52", "0.55", 900, 800, "0.53", 12500, "active",
     "If the CF Benchmarks Bitcoin Real Time Index is above 96,000.00 at 10:45 AM ET on November 20, 2026, then "
     "the market resolves to Yes.", "closes_soon", None),
    ("KXHIGHNY-26NOV23-T52", "Will the high temp in NYC be 52° or above on Nov 23, 2026?", "52° or above",
     "2026-11-24T04:59:00Z", "linear_cent", "0.30", "0.33", 2000, 1800, "0.31", 12640, "active",
     "If the highest temperature recorded in Central Park, New York on November 23, 2026 is 52°F or above, "
     "according to the NWS Daily Climate Report, then the market resolves to Yes.", "pass",
     (0.58, 0.6, "Forecast guidance shows a warm front on the 23rd with highs in the mid 50s, above the "
      "seasonal normal of 50°F.", ["NWS forecast", "warm front timing", "cloud cover"])),
    ("KXHIGHCHI-26NOV24-T45", None, "45° or above",
     "2026-11-25T05:59:00Z", "linear_cent", "0.44", "0.47", 900, 850, "0.45", 7420, "active",
     "If the highest temperature recorded at Chicago Midway on November 24, 2026 is 45°F or above, according "
     "to the NWS Daily Climate Report, then the market resolves to Yes.", "pass",
     (0.47, 0.5, "Models disagree on when the cold front arrives, leaving the high close to 45°F.",
      ["front timing", "lake effect"])),
    ("KXHIGHDEN-26NOV23-T55", "Will the high temperature in Denver be 55° or above on November 23, 2026?",
     "55° or above", "2026-11-24T06:59:00Z", "linear_cent", "0.36", "0.39", 1500, 1400, "0.37", 412, "active",
     "If the highest temperature recorded at Denver International Airport on November 23, 2026 is 55°F or above, "
     "according to the NWS Daily Climate Report, then the market resolves to Yes.", "low_volume", None),
    ("KXSNOWNYCM-26DEC-T1", "Will Central Park get at least 1 inch of snow in December 2026?", "1 inch or more",
     "2027-01-01T04:59:00Z", "linear_cent", "0.31", "0.35", 40, 35, "0.33", 5230, "active",
     "If the total snowfall recorded in Central Park in December 2026 is at least 1.0 inch, according to the "
     "NWS, then the market resolves to Yes.", "low_liquidity",
     (0.28, 0.4, "Central Park reaches an inch in December in roughly a third of recent years.",
      ["climatology", "La Nina pattern"])),
    ("KXNYCCOLD-26DEC-T10", "Will Central Park drop below 10°F in December 2026?", "Below 10°F",
     "2027-01-01T04:59:00Z", "linear_cent", "0.0000", "0.15", 0, 900, "0.12", 3120, "active",
     "If the lowest temperature recorded in Central Park in December 2026 is below 10°F, according to the NWS, "
     "then the market resolves to Yes.", "no_quote", None),
    ("KXOPENWKND-26DOOM-T250", "Will Avengers: Doomsday open above $250M domestically?", "Above $250M",
     "2026-12-20T16:00:00Z", "linear_cent", "0.55", "0.58", 1200, 1400, "0.56", 27450, "active",
     "If the domestic opening weekend gross of Avengers: Doomsday (Friday to Sunday, December 18-20, 2026), "
     "as reported by The Numbers, is above $250,000,000, then the market resolves to Yes.", "pass",
     (0.30, 0.55, "Pre-sales track well but below the Endgame-era records, and the film opens against "
      "Dune: Part Three the same weekend.", ["pre-sales tracking", "competition from Dune: Part Three",
                                              "December release timing"])),
    ("KXOPENWKND-26DUNE3-T90", "Will Dune: Part Three open above $90M domestically?", "Above $90M",
     "2026-12-20T16:00:00Z", "linear_cent", "0.41", "0.44", 700, 800, "0.42", 9310, "active",
     "If the domestic opening weekend gross of Dune: Part Three (Friday to Sunday, December 18-20, 2026), as "
     "reported by The Numbers, is above $90,000,000, then the market resolves to Yes.", "pass",
     (0.42, 0.45, "Part Two opened near $82M; a sequel bump is plausible but the shared weekend hurts.",
      ["Part Two comparison", "IMAX screens", "shared release weekend"])),
    ("KXNBACUP-26-NYK", "Will the New York Knicks win the 2026 NBA Cup?", "New York",
     "2026-12-16T05:00:00Z", "linear_cent", "0.12", "0.14", 3000, 2800, "0.13", 18200, "active",
     "If the New York Knicks win the 2026 NBA Cup championship game, then the market resolves to Yes.", "pass",
     (0.11, 0.5, "The defending champions are one of eight quarter-finalists with a tough bracket.",
      ["bracket path", "injuries"])),
    ("KXNCAAFCHAMP-27-OSU", "Will Ohio State win the 2026-27 College Football Playoff national championship?",
     "Ohio State", "2027-01-26T05:00:00Z", "linear_cent", "0.18", "0.20", 2500, 2600, "0.19", 24110, "active",
     "If Ohio State wins the College Football Playoff National Championship game played in January 2027, then "
     "the market resolves to Yes.", "pass",
     (0.17, 0.45, "A top seed, but a 12-team bracket leaves any single team well short of even odds.",
      ["playoff seeding", "quarterback health"])),
    ("KXNFLGAME-26NOV26PHIDAL-DAL", "Eagles at Cowboys (Nov 26): will Dallas win?", "Dallas",
     "2026-11-27T04:30:00Z", "linear_cent", "0.38", "0.40", 1600, 1500, "0.39", 63420, "active",
     "If the Dallas Cowboys win the game against the Philadelphia Eagles scheduled for November 26, 2026, then "
     "the market resolves to Yes.", "pass",
     (0.40, 0.5, "Home field on Thanksgiving narrows the gap to a stronger Eagles roster.",
      ["home field", "Eagles pass rush"])),
    ("KXNBA-27-OKC", "Will the Oklahoma City Thunder win the 2027 NBA Finals?", "Oklahoma City",
     "2027-06-30T04:00:00Z", "linear_cent", "0.27", "0.29", 4000, 3800, "0.28", 210400, "active",
     "If the Oklahoma City Thunder win the 2027 NBA Finals, then the market resolves to Yes.", "closes_late",
     (0.31, 0.45, "The best net rating in the league again, but a seven-month horizon leaves room for "
      "injuries.", ["net rating", "injury risk"])),
    ("KXSPEAKERBALLOT-27JAN03", "Will the House elect a Speaker on the first ballot on January 3, 2027?",
     "First ballot", "2027-01-04T05:00:00Z", "linear_cent", "0.46", "0.49", 1100, 1000, "0.47", 15880, "active",
     "If the House of Representatives of the 120th Congress elects a Speaker on the first ballot held on "
     "January 3, 2027, then the market resolves to Yes.", "pass",
     (0.75, 0.6, "The majority conference nominated its candidate without public holdouts, and first-ballot "
      "failures have been rare outside razor-thin majorities.", ["conference vote", "public holdouts",
                                                                  "size of the majority"])),
    ("KXGOVSHUT-27JAN31", "Will the federal government shut down before January 31, 2027?", "Shutdown",
     "2027-01-31T05:00:00Z", "linear_cent", "0.21", "0.23", 2600, 2500, "0.22", 33790, "active",
     "If a lapse in appropriations causes a federal government shutdown beginning before January 31, 2027, then "
     "the market resolves to Yes.", "pass",
     (0.10, 0.5, "The continuing resolution runs to late January and leaders of both parties signalled "
      "another extension.", ["CR expiry date", "leadership statements"])),
    ("KXGPT6-27JAN31", "Will OpenAI release GPT-6 before January 31, 2027?", "Released",
     "2027-01-31T05:00:00Z", "linear_cent", "0.24", "0.27", 1400, 1300, "0.25", 21300, "active",
     "If OpenAI makes a model named GPT-6 generally available before January 31, 2027, then the market resolves "
     "to Yes.", "pass",
     (0.22, 0.4, "No launch signals yet, and OpenAI's naming has been unpredictable.",
      ["company statements", "naming conventions"])),
    ("KXGTA6SALES-26DEC31-T40", "Will GTA VI sell more than 40 million copies by December 31, 2026?",
     "Above 40M", "2026-12-31T22:00:00Z", "linear_cent", "0.35", "0.52", 900, 800, "0.44", 6200, "active",
     "If Take-Two reports sell-in of more than 40 million copies of Grand Theft Auto VI by December 31, 2026, "
     "then the market resolves to Yes.", "wide_spread",
     (0.40, 0.35, "Launch-week sales look record-breaking, but 40 million in six weeks is a very high bar.",
      ["launch sales", "Take-Two reporting"])),
    ("KXGASPRICE-26DEC31-T3.00", "Will the US average gas price be above $3.00 on December 31, 2026?",
     "Above $3.00", "2026-12-31T15:00:00Z", "linear_cent", "0.64", "0.67", 800, 700, "0.65", 11870, "active",
     "If the AAA national average price for regular gasoline on December 31, 2026 is above $3.00, then the "
     "market resolves to Yes.", "pass",
     (0.62, 0.5, "Prices sit slightly above $3.00 with the usual winter decline still to come.",
      ["crude oil", "winter blend", "refinery outages"])),
    ("KXTSAPAX-26NOV29-T3.1", "Will TSA screen more than 3.1 million people on November 29, 2026?",
     "Above 3.1M", "2026-11-30T14:00:00Z", "linear_cent", "0.58", "0.61", 900, 800, "0.59", 8800, "inactive",
     "If TSA checkpoint throughput for November 29, 2026, as published by the TSA, is above 3,100,000, then the "
     "market resolves to Yes.", "not_open", None),
]

KALSHI_SECONDARY = {
    "KXFEDDECISION": "The outcome is verified from the FOMC statement published by the Federal Reserve.",
    "KXCPI": "The outcome is verified from the BLS CPI release; later revisions are not considered.",
    "KXCPIYOY": "The outcome is verified from the BLS CPI release; later revisions are not considered.",
    "KXPAYROLLS": "The outcome is verified from the BLS Employment Situation release.",
    "KXGDP": "The outcome is verified from the BEA advance estimate.",
    "INX": "The outcome is verified from the S&P Dow Jones Indices official close.",
    "NASDAQ100": "The outcome is verified from the Nasdaq official close.",
}
DEFAULT_SECONDARY = "If the outcome cannot be determined by the source agency, the market resolves per Kalshi rules."

# (slug, question, end_date, bid, ask, last, volume, liquidity, tick, neg_risk, event_slug, purpose, estimate,
#  extra overrides of the Gamma object)
POLYMARKET = [
    ("bitcoin-above-120k-on-december-31-2026", "Will Bitcoin be above $120,000 on December 31, 2026?",
     "2026-12-31T17:00:00Z", "0.31", "0.32", "0.31", "2841930.55", "84210.40", "0.01", False,
     "bitcoin-above-on-december-31-2026", "pass",
     (0.10, 0.6, "Reaching $120,000 needs a rally of roughly a third in six weeks against weak ETF inflows.",
      ["distance to target", "ETF flows", "realised volatility"]), {}),
    ("will-grand-theft-auto-vi-win-game-of-the-year-at-the-game-awards-2026",
     "Will Grand Theft Auto VI win Game of the Year at The Game Awards 2026?",
     "2026-12-11T05:00:00Z", "0.40", "0.42", "0.41", "612880.12", "38400.00", "0.01", True,
     "the-game-awards-2026-game-of-the-year", "pass",
     (0.64, 0.55, "Launched inside the eligibility window to near-universal acclaim, and the jury has "
      "historically favoured landmark releases.", ["critic scores", "eligibility window", "jury history"]), {}),
    ("fed-decreases-interest-rates-by-25-bps-after-january-2027-meeting",
     "Will the Fed cut rates by 25 bps after the January 2027 meeting?",
     "2027-01-27T19:00:00Z", "0.27", "0.28", "0.28", "1934020.00", "152300.00", "0.01", True,
     "fed-decision-in-january-2027", "pass",
     (0.50, 0.5, "If December is a hold, cooling inflation gives the committee room to resume cutting "
      "in January.", ["December decision", "core inflation", "dot plot"]), {}),
    ("nvidia-largest-company-in-the-world-on-december-31-2026",
     "Will NVIDIA be the largest company in the world by market cap on December 31, 2026?",
     "2026-12-31T23:59:00Z", "0.70", "0.72", "0.71", "3120450.75", "96400.00", "0.01", True,
     "largest-company-end-of-2026", "pass",
     (0.93, 0.65, "NVIDIA leads the next-largest company by a wide margin that six weeks of typical moves "
      "are unlikely to close.", ["market-cap gap", "earnings calendar"]), {}),
    ("no-change-in-fed-interest-rates-after-december-2026-meeting",
     "Will the Fed hold rates after the December 2026 meeting?",
     "2026-12-09T19:00:00Z", "0.63", "0.64", "0.64", "4823100.00", "210500.00", "0.01", True,
     "fed-decision-in-december-2026", "pass",
     (0.66, 0.6, "Fed speakers have leaned toward patience, though a weak jobs report remains a risk.",
      ["FOMC minutes", "payrolls"]), {}),
    ("will-ethereum-reach-5000-by-december-31-2026", "Will Ethereum reach $5,000 by December 31, 2026?",
     "2026-12-31T23:59:00Z", "0.14", "0.15", "0.14", "1320400.00", "41200.00", "0.01", False,
     "what-price-will-ethereum-hit-in-2026", "pass",
     (0.12, 0.5, "A new high within six weeks would need a strong catalyst that is not visible yet.",
      ["distance to target", "staking flows"]), {}),
    ("will-taylor-swift-be-spotifys-top-artist-of-2026", "Will Taylor Swift be Spotify's top global artist of 2026?",
     "2026-12-05T00:00:00Z", "0.47", "0.49", "0.48", "455200.00", "21800.00", "0.01", True,
     "spotify-top-artist-2026", "pass",
     (0.45, 0.45, "Streaming counts through October show a close race with one other artist.",
      ["streaming totals", "album release timing"]), {}),
    ("avengers-doomsday-opening-weekend-above-300m", "Will Avengers: Doomsday open above $300M domestically?",
     "2026-12-21T17:00:00Z", "0.22", "0.24", "0.23", "184300.00", "22800.00", "0.01", False,
     "avengers-doomsday-opening-weekend", "pass",
     (0.15, 0.5, "Only one film has ever opened above $300M, and pre-sales point lower.",
      ["pre-sales tracking", "historical openings"]), {}),
    ("will-the-detroit-lions-win-on-thanksgiving-2026", "Will the Detroit Lions win their Thanksgiving Day game?",
     "2026-11-26T21:00:00Z", "0.61", "0.63", "0.62", "842300.00", "63000.00", "0.01", False,
     "nfl-thanksgiving-2026-lions", "pass",
     (0.60, 0.5, "Favoured at home, with the usual short-week uncertainty.", ["home field", "short week"]), {}),
    ("will-arsenal-be-top-of-the-premier-league-on-christmas-day-2026",
     "Will Arsenal be top of the Premier League on Christmas Day 2026?",
     "2026-12-25T12:00:00Z", "0.52", "0.55", "0.53", "256700.00", "18400.00", "0.01", False,
     "premier-league-top-at-christmas-2026", "pass",
     (0.50, 0.45, "A two-point lead with five fixtures left before Christmas is close to a coin flip.",
      ["points gap", "fixture difficulty"]), {}),
    ("will-google-release-gemini-4-before-2027", "Will Google release Gemini 4 before 2027?",
     "2026-12-31T23:59:00Z", "0.41", "0.43", "0.42", "388100.00", "27200.00", "0.01", False,
     "gemini-4-release", "pass",
     (0.38, 0.4, "Google ships major versions roughly yearly, and the last one came in spring.",
      ["release cadence", "developer previews"]), {}),
    ("will-openai-announce-an-ipo-before-2027", "Will OpenAI announce an IPO before 2027?",
     "2026-12-31T23:59:00Z", "0.08", "0.09", "0.08", "512400.00", "33100.00", "0.01", False,
     "openai-ipo-2026", "pass",
     (0.05, 0.5, "Reporting points to a 2027 listing at the earliest.", ["company statements", "restructuring"]), {}),
    ("will-tesla-launch-unsupervised-fsd-before-2027", "Will Tesla launch unsupervised FSD for customers before 2027?",
     "2026-12-31T23:59:00Z", "0.18", "0.20", "0.19", "298100.00", "24100.00", "0.01", False,
     "tesla-unsupervised-fsd-2026", "pass",
     (0.10, 0.45, "Regulatory approval for customer-owned cars without supervision is not in sight this year.",
      ["regulatory approval", "robotaxi expansion"]), {}),
    ("us-cpi-above-2pt7-for-november-2026", "Will US CPI inflation for November 2026 be above 2.7% year over year?",
     "2026-12-10T13:30:00Z", "0.56", "0.58", "0.57", "142300.00", "15600.00", "0.01", False,
     "us-inflation-november-2026", "pass",
     (0.45, 0.5, "The annual rate has hovered just around 2.7% for three months.", ["base effects", "energy"]), {}),
    ("will-bitcoin-dip-below-80k-before-2027", "Will Bitcoin dip below $80,000 before 2027?",
     "2026-12-31T23:59:00Z", "0.22", "0.23", "0.22", "1102300.00", "52300.00", "0.01", False,
     "what-price-will-bitcoin-hit-in-2026", "pass",
     (0.20, 0.5, "A drop of about 15% within six weeks happens often enough in Bitcoin to keep this live.",
      ["realised volatility", "ETF flows"]), {}),
    ("will-the-us-government-shut-down-before-february-1-2027",
     "Will the US government shut down before February 1, 2027?",
     "2027-01-31T23:59:00Z", "0.19", "0.21", "0.20", "388900.00", "30200.00", "0.01", False,
     "us-government-shutdown-2027", "pass",
     (0.15, 0.5, "Both parties signalled another stopgap when the current one expires.", ["CR expiry"]), {}),
    # deliberate rejects
    ("highest-temperature-in-paris-on-november-24-10c-or-higher",
     "Will the highest temperature in Paris on November 24 be 10°C or higher?",
     "2026-11-24T23:00:00Z", "0.44", "0.47", "0.45", "640.25", "1800.00", "0.01", False,
     "highest-temperature-in-paris-on-november-24", "low_volume", None, {}),
    ("will-nintendo-announce-a-new-3d-mario-game-before-2027",
     "Will Nintendo announce a new 3D Mario game before 2027?",
     "2026-12-31T23:59:00Z", "0.20", "0.24", "0.22", "4210.80", "180.50", "0.01", False,
     "nintendo-3d-mario-2026", "low_liquidity", None, {}),
    ("will-bitcoin-reach-200k-by-december-31-2026", "Will Bitcoin reach $200,000 by December 31, 2026?",
     "2026-12-31T23:59:00Z", "0.009", "0.011", "0.010", "988400.00", "58200.00", "0.001", False,
     "what-price-will-bitcoin-hit-in-2026", "price_low", None, {}),
    ("will-us-national-debt-exceed-38-trillion-before-2027",
     "Will US national debt exceed $38 trillion before 2027?",
     "2026-12-31T23:59:00Z", "0.984", "0.986", "0.985", "104300.00", "12800.00", "0.001", False,
     "us-national-debt-2026", "price_high", None, {}),
    ("ethereum-above-3200-on-november-20-1030am-et", "Will Ethereum be above $3,200 at 10:30 AM ET on November 20?",
     "2026-11-20T15:30:00Z", "0.48", "0.51", "0.49", "31200.00", "4100.00", "0.01", False,
     "ethereum-above-on-november-20", "closes_soon", None, {}),
    ("will-the-oklahoma-city-thunder-win-the-2027-nba-finals",
     "Will the Oklahoma City Thunder win the 2027 NBA Finals?",
     "2027-06-30T00:00:00Z", "0.26", "0.27", "0.27", "8342100.00", "412000.00", "0.01", True,
     "2027-nba-champion", "closes_late",
     (0.31, 0.45, "The strongest roster on paper, but the Finals are more than seven months away.",
      ["net rating", "injury risk"]), {}),
    ("will-netflix-raise-us-prices-before-2027", "Will Netflix raise US subscription prices before 2027?",
     "2026-12-31T23:59:00Z", "0.22", "0.40", "0.30", "22800.00", "2100.00", "0.01", False,
     "netflix-price-increase-2026", "wide_spread",
     (0.25, 0.4, "Netflix raised prices in January, and it rarely moves twice in one year.",
      ["price-change history", "ad-tier growth"]), {}),
    ("will-the-detroit-lions-win-the-nfc-north-2026", "Will the Detroit Lions win the NFC North?",
     "2027-01-10T23:59:00Z", "0.58", "0.60", "0.59", "402100.00", "21000.00", "0.01", True,
     "nfc-north-winner-2026", "not_open", None, {"acceptingOrders": False}),
    ("will-apple-announce-smart-glasses-before-2027", "Will Apple announce smart glasses before 2027?",
     "2026-12-31T23:59:00Z", None, "0.06", "0.05", "72400.00", "3100.00", "0.01", False,
     "apple-smart-glasses-2026", "no_quote", None, {}),
    ("arsenal-vs-chelsea-december-12-2026", "Arsenal vs. Chelsea: who wins on December 12?",
     "2026-12-12T19:30:00Z", "0.47", "0.49", "0.48", "512000.00", "40100.00", "0.01", False,
     "arsenal-vs-chelsea-december-12-2026", "non_binary", None,
     {"outcomes": ["Arsenal", "Draw", "Chelsea"], "outcomePrices": ["0.48", "0.27", "0.25"]}),
    ("lakers-vs-celtics-december-25-2026", "Lakers vs. Celtics (December 25)",
     "2026-12-26T04:00:00Z", "0.44", "0.46", "0.45", "377000.00", "28800.00", "0.01", False,
     "nba-lakers-vs-celtics-2026-12-25", "non_binary", None,
     {"outcomes": ["Lakers", "Celtics"], "outcomePrices": ["0.45", "0.55"]}),
    ("will-2026-be-the-hottest-year-on-record", "Will 2026 be the hottest year on record?",
     "2027-01-15T00:00:00Z", "0.18", "0.21", "0.19", "91000.00", "6400.00", "0.01", False,
     "hottest-year-on-record-2026", "no_order_book", None, {"enableOrderBook": False, "acceptingOrders": False}),
    # A Protocol V2 market: outcome ids in positionIds (a real array); clobTokenIds there is stale.
    ("will-russia-and-ukraine-sign-a-ceasefire-before-2027", "Will Russia and Ukraine sign a ceasefire before 2027?",
     "2026-12-31T23:59:00Z", "0.24", "0.25", "0.24", "1890300.00", "61200.00", "0.01", False,
     "russia-ukraine-ceasefire-2026", "pass",
     (0.05, 0.5, "Talks have stalled since the summer and neither side has moved on the core territorial "
      "demands.", ["negotiation status", "front-line changes"]), {"version": "v2"}),
    # A protocol version this desk does not know: dropped with its reason, never guessed.
    ("will-the-eu-approve-a-digital-euro-before-2027", "Will the EU approve a digital euro before 2027?",
     "2026-12-31T23:59:00Z", "0.12", "0.14", "0.13", "210400.00", "15200.00", "0.01", False,
     "digital-euro-2026", "protocol_version_unknown", None, {"version": "v9"}),
]

# Each series' fee structure as GET /series/{ticker} serves it: (fee_type, fee_multiplier). The index series carry
# half the general rate; the Fed series charges makers too. Every other series: quadratic x1.
SERIES_FEES = {"INX": ("quadratic", 0.5), "NASDAQ100": ("quadratic", 0.5),
               "KXFEDDECISION": ("quadratic_with_maker_fees", 1)}
# Polymarket taker rates by category (docs.polymarket.com fees, late 2026), picked by words of the event slug.
POLY_CATEGORIES = [(("bitcoin", "ethereum"), "crypto", D("0.07")),
                   (("nfl", "nba", "premier", "arsenal", "lakers", "lions", "thunder"), "sports", D("0.03")),
                   (("cpi", "inflation", "gas"), "economics", D("0.05")),
                   (("temperature", "hottest"), "weather", D("0.05")),
                   (("swift", "avengers", "game-awards"), "culture", D("0.05")),
                   (("ceasefire",), "geopolitics", D("0"))]
POLY_DEFAULT_CATEGORY = ("finance, politics, tech", D("0.04"))


def poly_rate(event_slug: str) -> Decimal:
    for words, _, rate in POLY_CATEGORIES:
        if any(word in event_slug for word in words):
            return rate
    return POLY_DEFAULT_CATEGORY[1]


def series_rate(ticker: str) -> Decimal:
    fee_type, multiplier = SERIES_FEES.get(ticker.split("-", 1)[0], ("quadratic", 1))
    return D("0.07") * D(str(multiplier))


def kalshi_series(series: str) -> dict:
    fee_type, multiplier = SERIES_FEES.get(series, ("quadratic", 1))
    return {"series": {"ticker": series, "frequency": "custom", "title": f"{series} (sample)", "category": "Sample",
                       "tags": [], "categories": ["Sample"], "settlement_sources": [], "contract_url": "", "contract_terms_url": "",
                       "fee_type": fee_type, "fee_multiplier": multiplier, "additional_prohibitions": [],
                       "exchange_index": 0}}


def clob_market(market: dict, rate: Decimal) -> dict:
    """GET /clob-markets/{condition_id} as the CLOB serves it: compact keys, `fd` only where a fee is charged."""
    ids = market["positionIds"] if market.get("version") == "v2" else json.loads(market["clobTokenIds"])
    body: dict = {"c": market["conditionId"], "t": [{"t": ids[0], "o": "Yes"}, {"t": ids[1], "o": "No"}],
                  "mos": market.get("orderMinSize", 5), "mts": market["orderPriceMinTickSize"], "mbf": 0, "tbf": 0}
    if market.get("negRisk"):
        body["nr"] = True
    if rate:
        body["fd"] = {"r": float(rate), "e": 1, "to": True}
    return body
FILTERS = dict(min_volume=D(1000), min_liquidity=D(500), min_price=D("0.03"), max_price=D("0.97"),
               min_hours=D(1), max_days=D(90), max_spread=D("0.10"))
MIN_EDGE = D("0.08")


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def hexdigest(*parts: str) -> str:
    return hashlib.sha256(":".join(parts).encode()).hexdigest()


def k4(x: Decimal) -> str:
    return f"{x:.4f}"


def k2(x: Decimal | int) -> str:
    return f"{D(x):.2f}"


def pm(x: Decimal) -> str:
    """Polymarket prints numbers without trailing zeros: "0.31", "0.009"."""
    return format(x.normalize(), "f")


# --- Kalshi ------------------------------------------------------------------------------------

def kalshi_market(row: tuple, rng: random.Random) -> dict:
    (ticker, title, yes_sub, close, structure, bid, ask, bid_size, ask_size, last, volume, status, rules,
     _purpose, _estimate) = row
    event_ticker = ticker.rsplit("-", 1)[0]
    series = ticker.split("-", 1)[0]
    bid, ask, last = D(bid), D(ask), D(last)
    close_dt = parse(close)
    step = "0.0010" if structure == "deci_cent" else "0.0100"
    no_ask = "1.0000" if bid == 0 else k4(1 - bid)
    market = {
        "ticker": ticker,
        "event_ticker": event_ticker,
        "market_type": "binary",
        "yes_sub_title": yes_sub,
        "no_sub_title": yes_sub,  # Kalshi repeats the YES label here on binary markets
        "created_time": iso(CAPTURED_AT - timedelta(days=rng.randint(20, 120))),
        "updated_time": iso(CAPTURED_AT - timedelta(minutes=rng.randint(3, 90))),
        "open_time": iso(CAPTURED_AT - timedelta(days=rng.randint(5, 19))),
        "close_time": close,
        "expected_expiration_time": iso(close_dt + timedelta(hours=2)),
        "latest_expiration_time": iso(close_dt + timedelta(days=7)),
        "settlement_timer_seconds": 300,
        "status": status,
        "notional_value_dollars": "1.0000",
        "yes_bid_dollars": k4(bid),
        "yes_ask_dollars": k4(ask),
        "no_bid_dollars": k4(1 - ask),
        "no_ask_dollars": no_ask,
        "yes_bid_size_fp": k2(bid_size),
        "yes_ask_size_fp": k2(ask_size),
        "last_price_dollars": k4(last),
        "previous_yes_bid_dollars": k4(max(bid - D("0.01"), D(0)) if bid else bid),
        "previous_yes_ask_dollars": k4(ask),
        "previous_price_dollars": k4(last),
        "volume_fp": k2(volume),
        "volume_24h_fp": k2(volume * rng.randint(3, 12) // 100),
        "open_interest_fp": k2(volume * rng.randint(25, 60) // 100),
        "result": "",
        "can_close_early": series not in ("INX", "NASDAQ100", "KXBTC", "KXBTC15M"),
        "expiration_value": "",
        "rules_primary": rules,
        "rules_secondary": KALSHI_SECONDARY.get(series, DEFAULT_SECONDARY),
        "price_level_structure": structure,
        "price_ranges": [{"start": "0.0000", "end": "1.0000", "step": step}],
        "settlement_bounds_type": "default",
    }
    if title is not None:
        market["title"] = title  # deprecated, still served by most markets
    return market


def depth(best: Decimal, size: int, tick: Decimal, rng: random.Random) -> list[tuple[Decimal, Decimal]]:
    """3-5 bid levels from `best` downwards, sizes growing away from the touch."""
    levels = [(best, D(size))]
    price, amount = best, D(size)
    for _ in range(rng.randint(2, 4)):
        price -= tick * rng.randint(1, 3)
        amount = (amount * D(rng.uniform(1.3, 2.0))).quantize(D(1))
        if price <= 0:
            break
        levels.append((price, amount))
    return levels


def kalshi_book(row: tuple, rng: random.Random) -> dict:
    _, _, _, _, structure, bid, ask, bid_size, ask_size = row[:9]
    tick = D("0.001") if structure == "deci_cent" else D("0.01")
    bid, ask = D(bid), D(ask)
    yes = depth(bid, bid_size, tick, rng) if bid > 0 else []
    no = depth(1 - ask, ask_size, tick, rng) if ask < 1 else []
    # Kalshi lists each side ascending by price: the best bid is the last entry.
    return {"orderbook_fp": {"yes_dollars": [[k4(p), k2(s)] for p, s in sorted(yes)],
                             "no_dollars": [[k4(p), k2(s)] for p, s in sorted(no)]}}


# --- Polymarket -------------------------------------------------------------------------------

def token_id(slug: str, outcome: str) -> str:
    return str(int(hexdigest("token", slug, outcome), 16))[:77]


def polymarket_market(index: int, row: tuple, rng: random.Random) -> dict:
    (slug, question, end, bid, ask, last, volume, liquidity, tick, neg_risk, event_slug, _purpose, _estimate,
     extra) = row
    outcomes = extra.get("outcomes", ["Yes", "No"])
    mid = (D(bid) + D(ask)) / 2 if bid else D(last)
    prices = extra.get("outcomePrices", [pm(mid.quantize(D(tick))), pm((1 - mid).quantize(D(tick)))])
    end_dt = parse(end)
    market = {
        "id": str(610000 + index * 137),
        "question": question,
        "conditionId": "0x" + hexdigest("condition", slug),
        "slug": slug,
        "questionID": "0x" + hexdigest("question", slug),
        "startDate": iso(CAPTURED_AT - timedelta(days=rng.randint(10, 90))),
        "endDate": end,
        "endDateIso": end_dt.date().isoformat(),
        "description": (f"This market will resolve to \"Yes\" if the following is true: {question} "
                        "Otherwise it will resolve to \"No\". The resolution source is the official "
                        "announcement or the primary data publisher named in the market's rules."),
        "volume": volume,
        "volumeNum": float(volume),
        "liquidity": liquidity,
        "liquidityNum": float(liquidity),
        "volume24hr": round(float(volume) * rng.uniform(0.02, 0.12), 4),
        "outcomes": json.dumps(outcomes),
        "outcomePrices": json.dumps(prices),
        "clobTokenIds": json.dumps([token_id(slug, o) for o in outcomes]),
        "version": "v1",
        "active": True,
        "closed": False,
        "archived": False,
        "enableOrderBook": True,
        "acceptingOrders": True,
        "orderPriceMinTickSize": float(tick),
        "orderMinSize": 5,
        "negRisk": neg_risk,
        "spread": float(D(ask) - D(bid)) if bid else None,
        "lastTradePrice": float(last),
        "bestBid": float(bid) if bid else None,
        "bestAsk": float(ask),
        "events": [{"id": str(30000 + index * 11), "ticker": event_slug, "slug": event_slug,
                    "title": question if not neg_risk else event_slug.replace("-", " ").title()}],
    }
    market.update({k: v for k, v in extra.items() if k not in ("outcomes", "outcomePrices")})
    if market.get("version") == "v2":
        market["positionIds"] = [token_id(slug, f"{o}-v2") for o in outcomes]
    return {k: v for k, v in market.items() if v is not None}  # Gamma omits empty fields


def yes_id(market: dict) -> str:
    """The YES outcome's id as the CLOB knows it: a position id on v2 markets, a token id on v1."""
    if market.get("version") == "v2":
        return market["positionIds"][0]
    return json.loads(market["clobTokenIds"])[0]


def polymarket_book(row: tuple, condition_id: str, rng: random.Random, asset_id: str) -> dict:
    slug, _, _, bid, ask, last, _, _, tick, neg_risk = row[:10]
    step = D(tick)
    bids = depth(D(bid), rng.randint(400, 3000), step, rng) if bid else []
    asks_no_side = depth(1 - D(ask), rng.randint(400, 3000), step, rng)
    asks = [(1 - p, s) for p, s in asks_no_side]
    size = lambda s: pm((s + D(rng.randint(0, 99)) / 100).quantize(D("0.01")))  # noqa: E731
    return {
        "market": condition_id,
        "asset_id": asset_id,
        "timestamp": str(int(CAPTURED_AT.timestamp() * 1000) - rng.randint(1000, 60000)),
        "hash": hexdigest("book", slug)[:40],
        # As the CLOB serves them: bids lowest-first, asks highest-first (best price last).
        "bids": [{"price": pm(p), "size": size(s)} for p, s in sorted(bids)],
        "asks": [{"price": pm(p), "size": size(s)} for p, s in sorted(asks, reverse=True)],
        "min_order_size": "5",
        "tick_size": pm(step),
        "neg_risk": neg_risk,
        "last_trade_price": pm(D(last)),
    }


# --- verdicts: the default filters and the edge, recomputed here as a self-check --------------

def verdict(status_open: bool, bid, ask, last, volume, liquidity, close: datetime) -> str:
    if not status_open:
        return "not_open"
    if bid is None or ask is None:
        return "no_quote"
    mid = (bid + ask) / 2
    hours = D((close - CAPTURED_AT).total_seconds()) / 3600
    if volume < FILTERS["min_volume"]:
        return "low_volume"
    if liquidity < FILTERS["min_liquidity"]:
        return "low_liquidity"
    if mid < FILTERS["min_price"]:
        return "price_low"
    if mid > FILTERS["max_price"]:
        return "price_high"
    if hours < FILTERS["min_hours"]:
        return "closes_soon"
    if hours > FILTERS["max_days"] * 24:
        return "closes_late"
    if ask - bid > FILTERS["max_spread"]:
        return "wide_spread"
    return "pass"


def best_edge(model: float, bid: Decimal, ask: Decimal, rate: Decimal) -> tuple[str, Decimal]:
    mid = (bid + ask) / 2
    fair = D(str(model)) / 2 + mid / 2
    yes = fair - ask - rate * ask * (1 - ask)
    no = bid - fair - rate * bid * (1 - bid)  # buy NO at 1 - bid, wins with 1 - fair
    return ("yes", yes) if yes >= no else ("no", no)


def main() -> None:
    rng = random.Random(20261120)
    OUT.mkdir(parents=True, exist_ok=True)
    estimates: dict[str, dict] = {}
    report: list[tuple[str, str, str, Decimal | None]] = []

    k_markets, k_books = [], {}
    for row in KALSHI:
        market = kalshi_market(row, rng)
        k_markets.append(market)
        bid, ask = D(row[5]), D(row[6])
        if bid > 0 or ask < 1:
            k_books[row[0]] = kalshi_book(row, rng)
        quote_bid = bid if bid > 0 else None
        quote_ask = ask if ask < 1 else None
        liquidity = sum((p * s for p, s in ((quote_bid, row[7]), (quote_ask, row[8])) if p is not None), D(0))
        got = verdict(row[11] == "active", quote_bid, quote_ask, D(row[9]), D(row[10]), liquidity, parse(row[3]))
        assert got == row[13], f"{row[0]}: intended {row[13]}, filters say {got}"
        estimate = row[14]
        edge = None
        if estimate:
            estimates[f"kalshi:{row[0]}"] = estimate
            if got == "pass":
                side, edge = best_edge(estimate[0], bid, ask, series_rate(row[0]))
                report.append((f"kalshi:{row[0]}", side, got, edge))
        assert got != "pass" or estimate, f"{row[0]} passes the filters but has no estimate"

    p_markets, p_books, clob_markets = [], {}, {}
    for index, row in enumerate(POLYMARKET):
        market = polymarket_market(index, row, rng)
        p_markets.append(market)
        bid = D(row[3]) if row[3] else None
        ask = D(row[4])
        if row[11] not in ("non_binary", "no_order_book", "protocol_version_unknown"):
            p_books[yes_id(market)] = polymarket_book(row, market["conditionId"], rng, yes_id(market))
            clob_markets[market["conditionId"]] = clob_market(market, poly_rate(row[10]))
            status_open = market.get("acceptingOrders", True) is not False
            got = verdict(status_open, bid, ask, D(row[5]), D(row[6]), D(row[7]), parse(row[2]))
            assert got == row[11], f"{row[0]}: intended {row[11]}, filters say {got}"
        estimate = row[12]
        if estimate:
            key = f"polymarket:{market['conditionId']}"
            estimates[key] = estimate
            if row[11] == "pass":
                side, edge = best_edge(estimate[0], bid, ask, poly_rate(row[10]))
                report.append((key, side, row[11], edge))
        assert row[11] != "pass" or estimate, f"{row[0]} passes the filters but has no estimate"

    signals = [r for r in report if r[3] is not None and r[3] >= MIN_EDGE]
    assert 6 <= len(signals) <= 10, f"{len(signals)} signals"

    def page(items: list, size: int) -> list[list]:
        return [items[i:i + size] for i in range(0, len(items), size)]

    k_pages = page(k_markets, 16)
    kalshi_pages = [{"markets": chunk, "cursor": "" if i == len(k_pages) - 1 else f"CgwI{i + 1}sampleKalshiCursor"}
                    for i, chunk in enumerate(k_pages)]
    p_pages = page(p_markets, 15)
    poly_pages = []
    for i, chunk in enumerate(p_pages):
        body: dict = {"markets": chunk}
        if i < len(p_pages) - 1:  # absent on the last page
            body["next_cursor"] = f"eyJpZCI6{i + 1}sampleGammaCursor"
        poly_pages.append(body)

    files = {
        "kalshi": {"markets": "kalshi_markets.json", "books": "kalshi_orderbooks.json", "fees": "kalshi_series.json"},
        "polymarket": {"markets": "polymarket_markets.json", "books": "polymarket_books.json",
                       "fees": "polymarket_clob_markets.json"},
        "estimates": "estimates.json",
    }
    outputs = {
        "manifest.json": {"label": LABEL, "captured_at": iso(CAPTURED_AT), "files": files},
        "kalshi_markets.json": kalshi_pages,
        "kalshi_orderbooks.json": k_books,
        "polymarket_markets.json": poly_pages,
        "polymarket_books.json": p_books,
        "kalshi_series.json": {series: kalshi_series(series)
                               for series in sorted({row[0].split("-", 1)[0] for row in KALSHI})},
        "polymarket_clob_markets.json": clob_markets,
        "estimates.json": {
            "label": "SAMPLE DATA - invented model estimates for the offline demo, not forecasts",
            "model": "sample",
            "estimates": {key: {"probability": p, "confidence": c, "reasoning": r, "key_factors": f}
                          for key, (p, c, r, f) in estimates.items()},
        },
    }
    for name, data in outputs.items():
        (OUT / name).write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    print(f"wrote {len(outputs)} files to {OUT}: {len(k_markets)} Kalshi and {len(p_markets)} Polymarket markets, "
          f"{len(estimates)} estimates")
    print("markets with net edge >= 0.08 (fair = 0.5 model + 0.5 mid, after taker fee):")
    for key, side, _, edge in signals:
        print(f"  {key:<84} {side:<3} {edge:.4f}")


if __name__ == "__main__":
    main()
