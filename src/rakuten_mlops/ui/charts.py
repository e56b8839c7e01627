"""Chart settings shared by the pages."""

from __future__ import annotations

import altair as alt

# Category names are long ("Jeux de plateau et figurines (wargames) (1180)"): show them whole.
LABELS = alt.Axis(labelLimit=360)
