"""Screenshot an HTML report in headless Chromium; fail on any console message of the page.

Usage::

    python scripts/screenshot_report.py out/demo/report.html docs/_static/report_first_screen.png
    python scripts/screenshot_report.py out/demo/report.html docs/_static/report_centres.png \\
        --section centres --height 1700

The page is opened from a temporary copy with a small script injected at the top of its
``<head>``: it prefixes every ``console.error`` and ``console.warn`` message with
``[console.error]`` / ``[console.warn]`` (Chromium logs every console message at the
same level, whatever its kind), reports every image that did not load as an error, and,
with ``--section ID``, shows only the page's ``<h2 id=ID>`` section, so that the first
screen *is* that section (Chromium's ``--screenshot`` ignores a URL fragment). A
``<base href>`` keeps the page's relative links pointing at its own folder.

Chromium's ``CONSOLE`` log lines are parsed; the script exits with status 1 and prints the
messages when any of them is an error: an uncaught exception, ``console.error``, a failed
resource load, or (with ``--strict``) any console output at all. Exit status 2: Chromium
is missing, failed or wrote no screenshot.
"""

from __future__ import annotations

import argparse
import html
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser", "google-chrome")
#: ``[pid:tid:date:INFO:CONSOLE:1] "message", source: url (line)`` (Chromium >= 120; older
#: versions write ``CONSOLE(1)``).
CONSOLE_LINE = re.compile(r':CONSOLE[:(]\d*\)?\]\s*"(?P<message>.*)", source: (?P<source>.*)$')
ERROR_MARKERS = ("[console.error]", "Uncaught", "Failed to load resource", "Refused to")

_INJECTED = """<script>
(function () {
  for (const kind of ["error", "warn"]) {
    const original = console[kind].bind(console);
    console[kind] = (...args) => original("[console." + kind + "]", ...args);
  }
  window.addEventListener("load", () => {
    for (const img of document.images) {
      if (!img.complete || img.naturalWidth === 0) {
        console.error("image did not load: " + img.src.slice(0, 80));
      }
    }
  });
  const section = %(section)s;
  if (section) {
    document.addEventListener("DOMContentLoaded", () => {
      const start = document.getElementById(section);
      if (!start) { console.error("no element with id " + section); return; }
      let keep = false;
      for (const node of Array.from(document.body.children)) {
        if (node === start) keep = true;
        else if (keep && node.tagName === "H2") keep = false;
        if (!keep) node.style.display = "none";
      }
    });
  }
})();
</script>"""


def find_chromium(explicit: str | None = None) -> str | None:
    """Return the Chromium executable: ``explicit``, or the first one found on this machine."""
    for candidate in (explicit,) if explicit else CHROMIUM_CANDIDATES:
        found = shutil.which(candidate) if candidate else None
        if found:
            return found
    return None


def instrumented_copy(page: Path, folder: Path, section: str | None) -> Path:
    """Write ``page`` into ``folder`` with the console hook (and section filter) injected."""
    text = page.read_text(encoding="utf-8")
    base = f'<base href="{html.escape(page.resolve().parent.as_uri())}/">'
    hook = _INJECTED % {"section": "null" if section is None else repr(section)}
    match = re.search(r"<head[^>]*>", text, flags=re.IGNORECASE)
    at = match.end() if match else 0
    copy = folder / "page.html"
    copy.write_text(text[:at] + base + hook + text[at:], encoding="utf-8")
    return copy


def console_messages(log: str) -> list[str]:
    """Return the page's console messages from Chromium's stderr log."""
    return [m.group("message") for line in log.splitlines() if (m := CONSOLE_LINE.search(line))]


def console_errors(messages: list[str], *, strict: bool = False) -> list[str]:
    """Return the messages that count as errors (every message when ``strict``)."""
    return [m for m in messages if strict or any(marker in m for marker in ERROR_MARKERS)]


def screenshot(
    page: Path,
    png: Path,
    *,
    section: str | None = None,
    width: int = 1280,
    height: int = 900,
    chromium: str | None = None,
    timeout: float = 120.0,
) -> tuple[list[str], str]:
    """Screenshot ``page`` into ``png``; return the console messages and Chromium's log.

    Raises
    ------
    RuntimeError
        Chromium is missing, fails, or writes no screenshot.
    """
    exe = find_chromium(chromium)
    if exe is None:
        raise RuntimeError("Chromium not found (tried " + ", ".join(CHROMIUM_CANDIDATES) + ")")
    png = png.resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="screenshot-") as tmp:
        copy = instrumented_copy(page, Path(tmp), section)
        profile = Path(tmp) / "profile"
        command = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            "--enable-logging=stderr",
            "--v=0",
            copy.as_uri(),
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    log = done.stdout + done.stderr
    if done.returncode != 0 or not png.exists() or png.stat().st_size == 0:
        raise RuntimeError(
            f"Chromium failed (exit {done.returncode}), no screenshot:\n{log[-2000:]}"
        )
    return console_messages(log), log


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status (0 ok, 1 console errors, 2 no screenshot)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("page", type=Path, help="the HTML file")
    parser.add_argument("png", type=Path, help="the screenshot to write")
    parser.add_argument("--section", help="show only the <h2 id=SECTION> section, e.g. centres")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--chromium", help="the Chromium executable")
    parser.add_argument("--strict", action="store_true", help="any console message fails")
    args = parser.parse_args(argv)
    if not args.page.is_file():
        print(f"screenshot_report: no such file: {args.page}", file=sys.stderr)
        return 2
    try:
        messages, _ = screenshot(
            args.page,
            args.png,
            section=args.section,
            width=args.width,
            height=args.height,
            chromium=args.chromium,
        )
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        print(f"screenshot_report: {err}", file=sys.stderr)
        return 2
    errors = console_errors(messages, strict=args.strict)
    if errors:
        print(f"screenshot_report: {len(errors)} console error(s) in {args.page}:", file=sys.stderr)
        for message in errors:
            print(f"  {message}", file=sys.stderr)
        return 1
    print(f"wrote {args.png} ({args.png.stat().st_size:,} bytes); no console errors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
