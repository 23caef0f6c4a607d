"""The warehouse bench's synthetic workspace: SDK-shaped calls over a few days (tracks of a
shop's tracking plan, pages with campaign and user agent, identifies with traits), 1% of them
sent twice, normalised by ingest's code into `events` rows as process stores them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from bench.reporting import iso
from shared.domain.events import IngestContext, normalise_request
from shared.domain.storage import event_row

DAYS = 3
# A retried request stores a second copy of its events (the views keep the first).
DUPLICATE_SHARE = 0.01

# A shop's tracking plan: each track event's properties as `name:kind` (5 to 15 of them).
TRACKING_PLAN = {
    "Order Completed": "order_id:id revenue:money quantity:int currency:currency coupon_used:bool"
    " shipping_method:word tax:money discount:money products:json placed_at:ts",
    "Product Viewed": "product_id:id sku:id category:word name:text price:money brand:word"
    " variant:word",
    "Product Added": "product_id:id sku:id name:text price:money quantity:int cart_id:id",
    "Checkout Started": "order_id:id value:money revenue:money currency:currency coupon:word"
    " shipping:money tax:money discount:money",
    "Signed Up": "method:word plan:word referrer:text trial:bool invited_by:id",
    "Logged In": "method:word remember_me:bool session_id:id attempts:int mfa:bool",
    "Search Performed": "query:text results:int filters:json page:int sort:word",
    "Video Played": "video_id:id title:text duration:int position:int quality:word autoplay:bool"
    " livestream:bool channel:word session_id:id total_length:int",
    "Subscription Renewed": "plan:word amount:money currency:currency interval:word"
    " renewed_at:ts seats:int auto:bool invoice_id:id coupon:word tax:money discount:money"
    " region:word payment_method:word card_brand:word trial_converted:bool",
    "Feature Used": "feature:word area:word count:int experiment:word variant:word",
}
TRACKS = {
    name: tuple(tuple(field.split(":")) for field in fields.split())
    for name, fields in TRACKING_PLAN.items()
}
WORDS = ("alpha", "basic", "pro", "express", "standard", "blue", "large", "email", "google", "eu")
CURRENCIES = ("USD", "EUR", "GBP")
PLANS = ("free", "team", "business", "enterprise")
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
)
CAMPAIGNS = (
    ("spring_sale", "google", "cpc"),
    ("newsletter_june", "email", "email"),
    ("retargeting", "facebook", "paid_social"),
    ("launch_week", "twitter", "social"),
)
PAGES = ("/", "/pricing", "/docs/getting-started", "/blog/warehouse", "/signup", "/product/42")
# The call types of a workspace's events and their shares.
MIX = (("track", 0.55), ("page", 0.33), ("identify", 0.12))


def _value(kind: str, rng: random.Random, moment: datetime) -> Any:
    if kind == "id":
        return f"{rng.choice('abcdefgh')}{rng.randrange(10**9):09d}"
    if kind == "money":
        return round(rng.uniform(1, 500), 2)
    if kind == "int":
        return rng.randrange(1, 20)
    if kind == "bool":
        return rng.random() < 0.5
    if kind == "currency":
        return rng.choice(CURRENCIES)
    if kind == "ts":
        return iso(moment - timedelta(minutes=rng.randrange(10_000)))
    if kind == "text":
        return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(2, 6))).title()
    if kind == "json":
        return [{"sku": f"SKU-{rng.randrange(100)}", "quantity": rng.randrange(1, 4)}]
    return rng.choice(WORDS)


def sdk_call(rng: random.Random, moment: datetime, users: int) -> dict[str, Any]:
    """One call as analytics.js or a server SDK sends it, client-timed just before `moment`."""
    user = rng.randrange(users)
    call_type = rng.choices([t for t, _ in MIX], [w for _, w in MIX])[0]
    path = rng.choice(PAGES)
    context: dict[str, Any] = {
        "library": {"name": "analytics.js", "version": "next-1.70.0"},
        "userAgent": rng.choice(USER_AGENTS),
        "locale": rng.choice(("en-US", "de-DE", "fr-FR")),
        "ip": f"203.0.113.{rng.randrange(256)}",
        "page": {
            "path": path,
            "url": f"https://shop.example{path}",
            "title": "Shop",
            "referrer": "https://www.google.com/",
            "search": "",
        },
    }
    if rng.random() < 0.4:
        name, source, medium = rng.choice(CAMPAIGNS)
        context["campaign"] = {"name": name, "source": source, "medium": medium}
    call: dict[str, Any] = {
        "type": call_type,
        "messageId": f"ajs-next-{rng.randrange(16**32):032x}",
        "anonymousId": f"anon-{user:06d}",
        "timestamp": iso(moment - timedelta(milliseconds=rng.randrange(50, 2000))),
        "sentAt": iso(moment - timedelta(milliseconds=rng.randrange(10, 50))),
        "context": context,
    }
    if call_type == "identify" or rng.random() < 0.7:
        call["userId"] = f"user-{user:06d}"
    if call_type == "track":
        name = rng.choice(list(TRACKS))
        call["event"] = name
        call["properties"] = {key: _value(kind, rng, moment) for key, kind in TRACKS[name]}
    elif call_type == "page":
        call["name"] = "Shop"
        call["properties"] = {**context["page"], "category": rng.choice(WORDS)}
    else:
        call["traits"] = {
            "plan": rng.choice(PLANS),
            "name": f"User {user}",
            "created_at": iso(moment - timedelta(days=rng.randrange(400))),
            "logins": rng.randrange(1, 500),
            "company": {"name": f"Company {user % 97}", "employees": rng.randrange(1, 5000)},
        }
        if rng.random() < 0.8:
            call["traits"]["email"] = f"user{user}@example.com"
    return call


def workspace_rows(
    workspace_id: str, events: int, now: datetime, seed: int
) -> list[dict[str, Any]]:
    """`events` calls over the last DAYS days, stored as ingest and process store them, plus a
    second copy of 1% of them (a retried request) received from a minute to 30 hours later."""
    rng = random.Random(seed)
    span = timedelta(days=DAYS) - timedelta(minutes=5)
    users = max(10, events // 13)
    arrivals = sorted(now - span + rng.random() * span for _ in range(events))
    copies = [(moment, sdk_call(rng, moment, users)) for moment in arrivals]
    for moment, call in rng.sample(copies, int(events * DUPLICATE_SHARE)):
        later = min(moment + timedelta(minutes=rng.uniform(1, 30 * 60)), now)
        copies.append((later, call))
    rows = []
    for received_at, call in copies:
        ctx = IngestContext(workspace_id, "src-web", received_at, None)
        [event] = normalise_request(call, call["type"], ctx).events
        rows.append(event_row(event))
    return rows
