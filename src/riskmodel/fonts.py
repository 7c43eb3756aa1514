"""A CJK font for matplotlib, so that Chinese labels render instead of empty boxes.

Matplotlib's default fonts have no Chinese glyphs. On Debian or Ubuntu
``apt-get install fonts-noto-cjk`` (or ``fonts-wqy-microhei``) provides one; ``./dev`` installs
it where it can.
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

CJK_FONTS = (
    "Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Source Han Sans CN",
    "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "Noto Serif CJK SC", "Microsoft YaHei",
    "SimHei", "PingFang SC", "Heiti SC", "Noto Sans CJK JP", "Noto Sans CJK TC",
    "Droid Sans Fallback",
)
CJK_FILE_HINTS = ("cjk", "wqy", "wenquanyi", "sourcehan", "droidsansfallback", "simhei", "msyh",
                  "pingfang", "notosanssc")


@functools.cache
def cjk_font() -> str | None:
    """The name of an installed font that draws Chinese, or None (with a warning) when none is.

    A font installed after matplotlib built its font cache is not in that cache: it is looked
    up among the system's font files and registered on the spot.

    Examples
    --------
    >>> name = cjk_font()
    >>> name is None or isinstance(name, str)
    True
    """
    from matplotlib import font_manager

    def known() -> str | None:
        names = {f.name for f in font_manager.fontManager.ttflist}
        return next((n for n in CJK_FONTS if n in names), None)

    found = known()
    if found is None:
        for path in font_manager.findSystemFonts():
            if any(hint in Path(path).name.lower() for hint in CJK_FILE_HINTS):
                font_manager.fontManager.addfont(path)
        found = known()
    if found is None:
        logger.warning("No CJK font found (install fonts-noto-cjk): Chinese labels in charts "
                       "will not render.")
    return found


def use_cjk_font() -> str | None:
    """Make matplotlib draw Chinese by default (for notebooks); returns the font used."""
    import matplotlib as mpl

    font = cjk_font()
    if font is not None:
        mpl.rcParams["font.sans-serif"] = [font, *mpl.rcParams["font.sans-serif"]]
        mpl.rcParams["font.family"] = "sans-serif"
        mpl.rcParams["axes.unicode_minus"] = False
    return font
