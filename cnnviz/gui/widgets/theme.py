"""Colours and sizes shared by the plots, so every tab looks the same."""

BACKGROUND = "#fafafa"
FOREGROUND = "#202020"
FRAME = "#9a9a9a"
TITLE_SIZE = "9pt"
HEADER_SIZE = "10pt"

RECEPTIVE_FIELD = "#ffb000"   # amber: the taps of a conv pixel on the input
PADDING = "#8a2be2"           # violet: taps that fall on zero padding
SELECTED = "#00c000"          # green: the clicked output pixel
WINNER = "#00c000"            # green: the max of a pool window
