"""The one rule for a colour that may travel in channel metadata (``meta.color``).

A channel's colour ends up in style properties of every view (notebook widgets, magics'
tables, the dashboard, the lab extension), so only plain CSS colour values are accepted:
hex (``#rgb``, ``#rgba``, ``#rrggbb``, ``#rrggbbaa``), ``rgb()``/``rgba()``/``hsl()``/
``hsla()`` with numeric arguments, or a CSS named colour. Nothing else can pass (no ``;``,
``}``, ``url(``, quotes, ``var()``), so a colour can never carry more CSS than a colour.
"""

from __future__ import annotations

import re

__all__ = ["CSS_NAMED_COLORS", "MAX_COLOR_LENGTH", "is_css_color"]

#: longest accepted colour text (``hsla(360.5, 100.5%, 100.5%, 0.555)`` needs about 40)
MAX_COLOR_LENGTH = 64

_NAMES = """
    aliceblue antiquewhite aqua aquamarine azure beige bisque black blanchedalmond blue
    blueviolet brown burlywood cadetblue chartreuse chocolate coral cornflowerblue cornsilk
    crimson cyan darkblue darkcyan darkgoldenrod darkgray darkgreen darkgrey darkkhaki
    darkmagenta darkolivegreen darkorange darkorchid darkred darksalmon darkseagreen
    darkslateblue darkslategray darkslategrey darkturquoise darkviolet deeppink deepskyblue
    dimgray dimgrey dodgerblue firebrick floralwhite forestgreen fuchsia gainsboro ghostwhite
    gold goldenrod gray green greenyellow grey honeydew hotpink indianred indigo ivory khaki
    lavender lavenderblush lawngreen lemonchiffon lightblue lightcoral lightcyan
    lightgoldenrodyellow lightgray lightgreen lightgrey lightpink lightsalmon lightseagreen
    lightskyblue lightslategray lightslategrey lightsteelblue lightyellow lime limegreen linen
    magenta maroon mediumaquamarine mediumblue mediumorchid mediumpurple mediumseagreen
    mediumslateblue mediumspringgreen mediumturquoise mediumvioletred midnightblue mintcream
    mistyrose moccasin navajowhite navy oldlace olive olivedrab orange orangered orchid
    palegoldenrod palegreen paleturquoise palevioletred papayawhip peachpuff peru pink plum
    powderblue purple rebeccapurple red rosybrown royalblue saddlebrown salmon sandybrown
    seagreen seashell sienna silver skyblue slateblue slategray slategrey snow springgreen
    steelblue tan teal thistle tomato transparent turquoise violet wheat white whitesmoke
    yellow yellowgreen
"""
#: the named colours of CSS Color Level 4, plus ``transparent``
CSS_NAMED_COLORS = frozenset(_NAMES.split())

_HEX = re.compile(r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")
_NUMBER = r"\s*(?:\d{1,3}(?:\.\d+)?|\.\d+)%?\s*"
_FUNCTION = re.compile(
    rf"(?:rgb|hsl)\({_NUMBER},{_NUMBER},{_NUMBER}\)"
    rf"|(?:rgba|hsla)\({_NUMBER},{_NUMBER},{_NUMBER},{_NUMBER}\)"
)


def is_css_color(value: object) -> bool:
    """True for a plain CSS colour value (see the module docstring); False for anything else,
    including non-strings."""
    if not isinstance(value, str) or not value or len(value) > MAX_COLOR_LENGTH:
        return False
    if value.lower() in CSS_NAMED_COLORS:
        return True
    return bool(_HEX.fullmatch(value) or _FUNCTION.fullmatch(value))
