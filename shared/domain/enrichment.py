"""Device enrichment and bot detection from the user agent (pure, no I/O).

`with_device` fills `context.device`, `context.os` and `context.browser` from `context.userAgent`
(parsed by ua-parser) and the User-Agent Client Hints in `context.userAgentData`; `is_bot` judges
`context.userAgent` with crawlerdetect. Both libraries' rules are data in their installed,
locked versions: updating the packages updates the rules. docs/PRIVACY.md describes both.

Like the other event functions, these never mutate their input: the objects they change are
copied, everything else is shared with the input.
"""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any, Literal

import ua_parser
from crawlerdetect import CrawlerDetect

from shared.domain.event import CanonicalEvent

# Distinct user agents whose parse, and whose crawler verdict, are kept: real traffic repeats a
# few thousand strings. Both caches full take ~13 MB (docs: "Device enrichment", cost).
USER_AGENT_CACHE_SIZE = 10_000

DeviceType = Literal["mobile", "tablet", "desktop"]

# ua-parser's device family for crawlers: they get no device (bot-ness is `is_bot`'s question).
_SPIDER = "Spider"
# ua-parser's brand for an Android device it does not know, by whether the user agent carries
# the "Mobile" token (Android tablets' browsers omit it): not a manufacturer.
_GENERIC_BRANDS = frozenset({"Generic", "Generic_Android", "Generic_Android_Tablet", _SPIDER})
_TABLET_FAMILIES = frozenset({"iPad", "Kindle"})
# Device names and models that name no device: Chrome's reduced user agent always says
# "Android 10; K", and ua-parser calls an iOS app's CFNetwork user agent's device "iOS-Device".
_PLACEHOLDER_DEVICES = frozenset({"K", "iOS-Device"})
_DESKTOP_FAMILIES = frozenset({"Mac"})
_MOBILE_OSES = frozenset({"Android", "iOS"})
# On Windows, the platformVersion client hint numbers the Universal API contract (13+ is
# Windows 11), not the release: the user agent's "Windows 10" is kept instead.
_PLATFORM_VERSION_NOT_OS_VERSION = frozenset({"Windows"})
# The brand the other Chromium browsers list beside their own name (the engine, not the product).
_ENGINE_BRAND = "Chromium"


@cache
def _parser() -> ua_parser.Parser:
    """ua-parser's best resolver (the Rust one when installed) behind its own bounded cache.

    Built on first use: compiling the rules takes ~0.25 s, paid once per instance.
    """
    resolver = ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins())
    cached = ua_parser.CachingResolver(resolver, ua_parser.Cache(USER_AGENT_CACHE_SIZE))
    return ua_parser.Parser(cached)


_CRAWLERS = CrawlerDetect()


@lru_cache(maxsize=USER_AGENT_CACHE_SIZE)
def _is_crawler(user_agent: str) -> bool:
    return _CRAWLERS.is_crawler(user_agent)


def is_bot(event: CanonicalEvent) -> bool:
    """Whether `context.userAgent` is a bot's or crawler's, by crawlerdetect.

    Without a user agent, never: server-side SDKs send none (their HTTP User-Agent header is
    not copied into the event), and their events are not a bot's.
    """
    user_agent = _user_agent(event.get("context"))
    return user_agent is not None and _is_crawler(user_agent)


def with_device(event: CanonicalEvent) -> CanonicalEvent:
    """The event with context.device / os / browser filled from the user agent and its hints.

    Only keys the SDK left missing (or null) are filled: what it sent is kept as sent, and an
    object it sent as something other than an object is left alone. Returns `event` itself
    when there is nothing to add.
    """
    context = event.get("context")
    if not isinstance(context, dict):
        return event
    derived = derive_device(_user_agent(context), _client_hints(context))
    changed: dict[str, Any] = {}
    for key, values in derived.items():
        sent = context.get(key)
        if sent is None:
            sent = {}
        if not isinstance(sent, dict):
            continue
        missing = {name: value for name, value in values.items() if sent.get(name) is None}
        if missing:
            changed[key] = {**sent, **missing}
    if not changed:
        return event
    return {**event, "context": {**context, **changed}}


def derive_device(
    user_agent: str | None, hints: dict[str, Any] | None
) -> dict[str, dict[str, str]]:
    """The `device`, `os` and `browser` objects a user agent and its client hints tell, each
    holding only the keys they tell (an object with none is left out).

    The user agent comes first for names, so a browser is named alike in every event
    (ua-parser's "Mac OS X", "Chrome"); the hints fill what the user agent lacks, and what
    Chrome's reduced user agent freezes: the device model, the OS and browser versions.
    """
    result = _parser().parse(user_agent) if user_agent else None
    hints = hints or {}
    device: dict[str, str] = {}
    os: dict[str, str] = {}
    browser: dict[str, str] = {}

    parsed_device = result.device if result else None
    family = parsed_device.family if parsed_device else None
    is_spider = family == _SPIDER
    if parsed_device and family and family != "Other" and not is_spider:
        brand = parsed_device.brand
        if brand and brand not in _GENERIC_BRANDS:
            device["manufacturer"] = brand
        if parsed_device.model and parsed_device.model not in _PLACEHOLDER_DEVICES:
            device["model"] = parsed_device.model
        if family not in _PLACEHOLDER_DEVICES:
            device["name"] = family
    hinted_model = _text(hints.get("model"))
    if hinted_model:
        device["model"] = hinted_model

    parsed_os = result.os if result else None
    if parsed_os:
        os["name"] = parsed_os.family
        version = _version(parsed_os.major, parsed_os.minor, parsed_os.patch)
        if version:
            os["version"] = version
    platform = _text(hints.get("platform"))
    if platform and "name" not in os:
        os["name"] = platform
    platform_version = _text(hints.get("platformVersion"))
    if platform_version and platform not in _PLATFORM_VERSION_NOT_OS_VERSION:
        os["version"] = _version(*platform_version.split(".")[:3]) or platform_version

    parsed_browser = result.user_agent if result else None
    if parsed_browser:
        browser["name"] = parsed_browser.family
        version = _version(parsed_browser.major, parsed_browser.minor, parsed_browser.patch)
        hinted_version = _hinted_browser(hints, ("fullVersionList",)).get("version", "")
        # A reduced user agent zeroes all but the major version ("Chrome/124.0.0.0"): the
        # hinted full version of the same major is the true one.
        if parsed_browser.major and hinted_version.split(".")[0] == parsed_browser.major:
            version = _version(*hinted_version.split(".")[:3])
        if version:
            browser["version"] = version
    else:
        browser.update(_hinted_browser(hints, ("fullVersionList", "brands")))

    if not is_spider:
        device_type = _device_type(
            family, parsed_device.brand if parsed_device else None, os.get("name"), hints
        )
        if device_type:
            device["type"] = device_type
    derived = {"device": device, "os": os, "browser": browser}
    return {key: values for key, values in derived.items() if values}


def _device_type(
    family: str | None, brand: str | None, os_name: str | None, hints: dict[str, Any]
) -> DeviceType | None:
    """mobile, tablet or desktop; None when neither the hints nor the user agent tell.

    - The `mobile` client hint, when sent, decides: true is mobile; false is a tablet on
      Android (Chrome on an Android tablet reports mobile false) and a desktop elsewhere.
    - Otherwise ua-parser's device: an iPad, a Kindle or an Android device without the "Mobile"
      token is a tablet, a Mac a desktop, any other device it recognises mobile.
    - No device recognised: a recognised OS says mobile (Android, iOS) or desktop (any other).
    """
    mobile = hints.get("mobile")
    if isinstance(mobile, bool):
        if mobile:
            return "mobile"
        return "tablet" if os_name == "Android" else "desktop"
    if family and family != "Other":
        if family in _TABLET_FAMILIES or brand == "Generic_Android_Tablet":
            return "tablet"
        return "desktop" if family in _DESKTOP_FAMILIES else "mobile"
    if os_name and os_name != "Other":
        return "mobile" if os_name in _MOBILE_OSES else "desktop"
    return None


def _hinted_browser(hints: dict[str, Any], lists: tuple[str, ...]) -> dict[str, str]:
    """The browser the client hints name, from the first of `lists` sent (`fullVersionList`, a
    high-entropy hint, has full versions; `brands` only majors).

    Their GREASE entries (made-up names such as "Not-A.Brand", which always hold the word "Brand")
    and the "Chromium" engine beside the product's own name are skipped.
    """
    for key in lists:
        entries = hints.get(key)
        if not isinstance(entries, list):
            continue
        named = [
            (name, _text(entry.get("version")))
            for entry in entries
            if isinstance(entry, dict)
            and (name := _text(entry.get("brand")))
            and "Brand" not in name
        ]
        products = [pair for pair in named if pair[0] != _ENGINE_BRAND] or named
        if products:
            name, version = products[0]
            return {"name": name, "version": version} if version else {"name": name}
    return {}


def _user_agent(context: Any) -> str | None:
    if not isinstance(context, dict):
        return None
    value = context.get("userAgent")
    if not isinstance(value, str) or not value.strip():
        return None
    return value


def _client_hints(context: dict[str, Any]) -> dict[str, Any] | None:
    hints = context.get("userAgentData")
    return hints if isinstance(hints, dict) else None


def _text(value: Any) -> str | None:
    return value.strip() or None if isinstance(value, str) else None


def _version(*parts: str | None) -> str | None:
    """ "major.minor.patch", up to the first missing part."""
    present: list[str] = []
    for part in parts:
        if not part:
            break
        present.append(part)
    return ".".join(present) or None
