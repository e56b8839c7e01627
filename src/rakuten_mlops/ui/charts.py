"""Chart settings shared by the pages."""

from __future__ import annotations

import altair as alt

# Category names are long ("Jeux de plateau et figurines (wargames) (1180)"): show them whole, and
# every one of them, even where Vega would thin out labels it finds crowded.
LABELS = alt.Axis(labelLimit=360, labelOverlap=False)
