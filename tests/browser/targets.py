"""What a finger and a keyboard meet on a page, measured in the browser: controls smaller than
44 x 44 px, and focus rings that do not stand out 3:1 from what is behind them (WCAG 2.5.5 and
1.4.11). Colours and sizes come from the computed styles, so a CSS change is what is tested."""

MIN_TARGET = 44

# Visible controls smaller than 44 x 44 px. Exceptions, as WCAG 2.5.5 makes them: a link in a
# sentence (its paragraph has other words), and a radio or checkbox inside its label (the label
# is the target and is measured instead). Visually hidden and off-screen things are no targets.
_UNDERSIZED = """min => {
  const controls = document.querySelectorAll(
    "a[href], button, input:not([type=hidden]), select, textarea, summary, label:has(> input)");
  const found = [];
  for (const el of controls) {
    if (el.closest("[hidden], template, details:not([open]) > :not(summary)")) continue;
    const box = el.getBoundingClientRect();
    if (box.width <= 1 || box.height <= 1 || box.right < 0 || box.bottom < 0) continue;
    if (el.matches("input[type=radio], input[type=checkbox]") && el.closest("label")) continue;
    if (el.matches("a") && el.parentElement.matches("p, li, dd, td")
        && el.parentElement.textContent.trim() !== el.textContent.trim()
        && getComputedStyle(el).display === "inline") continue;
    if (box.width < min || box.height < min) {
      const text = (el.textContent || el.name || "").trim().slice(0, 40);
      const size = `${Math.round(box.width)}x${Math.round(box.height)}`;
      found.push(`${el.tagName.toLowerCase()} "${text}" ${size}`);
    }
  }
  return found;
}"""

# The focused element's ring: its outline colour, and the first opaque background behind it
# (the ring is drawn outside the element, so the parent's and up).
_RING = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return {outside: true};  // between the end and the start
  if (el.__tabbedTo) return null;  // round once
  el.__tabbedTo = true;
  const style = getComputedStyle(el);
  let behind = el.parentElement, background = "rgb(255, 255, 255)";
  while (behind) {
    const colour = getComputedStyle(behind).backgroundColor;
    if (colour !== "transparent" && !colour.startsWith("rgba(0, 0, 0, 0)")) {
      background = colour;
      break;
    }
    behind = behind.parentElement;
  }
  const text = (el.textContent || el.name || "").trim().slice(0, 40);
  return {what: `${el.tagName.toLowerCase()} "${text}"`,
          style: style.outlineStyle, width: parseFloat(style.outlineWidth),
          ring: style.outlineColor, background};
}"""


def _luminance(rgb: str) -> float:
    channels = [int(float(c)) / 255 for c in rgb[rgb.index("(") + 1 : -1].split(",")[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def undersized_targets(page) -> list[str]:
    return page.evaluate(_UNDERSIZED, MIN_TARGET)


def weak_focus_rings(page, *, tabs: int = 60) -> tuple[int, list[str]]:
    """Tab once round the page; every focused control's ring must be drawn, at least 2 px wide,
    and 3:1 against what is behind it. Returns (controls seen, failures)."""
    seen, failures = 0, []
    for _ in range(tabs):
        page.keyboard.press("Tab")
        ring = page.evaluate(_RING)
        if ring is None:
            break
        if ring.get("outside"):
            continue
        seen += 1
        ratio = contrast(ring["ring"], ring["background"])
        if ring["style"] == "none" or ring["width"] < 2 or ratio < 3:
            failures.append(f"{ring['what']}: {ring['style']} {ring['width']}px {ratio:.2f}:1")
    return seen, failures
